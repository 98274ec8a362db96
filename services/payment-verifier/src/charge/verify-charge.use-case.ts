import { Inject, Injectable } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { createTempoClients } from "@worldrouter/chain";
import type { VerifyPaymentRequest, VerifyPaymentResult } from "@worldrouter/contracts";
import { Prisma, PrismaClient } from "@worldrouter/db";
import { chargeRequest, paymentProblem, PaymentErrors, serializeChargeReceipt, verifyChallengeId } from "@worldrouter/mpp";
import { counter, histogram, type Logger } from "@worldrouter/observability";
import { CONFIG, JobQueues, LOGGER, METRICS } from "@worldrouter/runtime";
import type { Counter, Histogram, Registry } from "prom-client";
import { Credential, Expires } from "mppx";
import { tempo } from "mppx/server";
import { Methods } from "mppx/tempo";
import { privateKeyToAccount } from "viem/accounts";
import { RedisReplayStore } from "./replay-store.js";

type ChargeMethod = ReturnType<typeof tempo.charge>;
type RecordPaymentInput = { request: VerifyPaymentRequest; challengeId: string; txHash: `0x${string}`; amount: bigint };

/** Attempts at recording a payment that already settled on-chain (see recordPaymentWithRetry). */
const RECORD_ATTEMPTS = 5;
type ChargeCredential = Parameters<NonNullable<ChargeMethod["broadcast"]>>[0]["credential"];

/**
 * Verifies a charge credential against the challenge it answers and the chain, then records the payment.
 * Order matters for money: every check that needs no chain runs first; the challenge id is claimed before
 * broadcasting so one challenge can never make the payer pay twice; the tx hash is claimed by mppx (Redis)
 * and by the `charge_payments.txHash` unique key (Postgres, the durable truth).
 */
@Injectable()
export class VerifyChargeUseCase {
  private readonly method: ChargeMethod;
  private readonly clients: ReturnType<typeof createTempoClients>;
  private readonly outcomes: Counter<"outcome">;
  private readonly phase: Histogram<"phase">;
  private readonly unrecorded: Counter;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(JobQueues) private readonly queues: JobQueues,
    @Inject(RedisReplayStore) private readonly replay: RedisReplayStore,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) metrics: Registry,
  ) {
    this.outcomes = counter(metrics, "wr_charge_verifications_total", "Charge credentials by outcome (verified, or the problem type)", ["outcome"]);
    this.phase = histogram(metrics, "wr_charge_verify_phase_ms", "Verification phases: checks (no chain), chain (co-sign, broadcast, confirm), record (Postgres + payments event)", ["phase"]);
    this.unrecorded = counter(metrics, "wr_charge_unrecorded_total", "Charges settled on-chain that could not be recorded after retries (reconcile by hand)");
    const { chain } = config;
    const clients = createTempoClients({ rpcUrl: chain.rpcUrl, chainId: chain.chainId, feeToken: chain.token });
    this.clients = clients;
    this.method = tempo.charge({
      currency: chain.token,
      recipient: chain.payee!,
      getClient: () => clients.publicClient as never,
      ...(chain.feePayerPrivateKey ? { feePayer: privateKeyToAccount(chain.feePayerPrivateKey) } : {}),
      store: replay as never,
      waitForConfirmation: true,
    });
  }

  async verify(request: VerifyPaymentRequest): Promise<VerifyPaymentResult> {
    try {
      const result = await this.verifyOrThrow(request);
      this.outcomes.inc({ outcome: "verified" });
      return result;
    } catch (err) {
      this.outcomes.inc({ outcome: err instanceof PaymentErrors.PaymentError ? err.type.split("/").pop()! : "internal-error" });
      if (err instanceof PaymentErrors.PaymentError) {
        this.logger.info({ requestId: request.requestId, problem: err.type, detail: err.message }, "charge rejected");
        return { ok: false, problem: paymentProblem(err) };
      }
      this.logger.error({ requestId: request.requestId, err }, "charge verification failed unexpectedly");
      return { ok: false, problem: paymentProblem(new PaymentErrors.VerificationFailedError({ reason: `the payment could not be verified: ${(err as Error).message}` })) };
    }
  }

  private async verifyOrThrow(request: VerifyPaymentRequest): Promise<VerifyPaymentResult> {
    const started = performance.now();
    const credential = parseCredential(request.authorization);
    const challenge = credential.challenge;
    const { config } = this;
    if (!verifyChallengeId(challenge, config.mpp.secretKey)) {
      throw new PaymentErrors.InvalidChallengeError({ id: challenge.id, reason: "challenge was not issued by this server (HMAC mismatch)" });
    }
    if (challenge.realm !== config.gateway.realm || challenge.method !== "tempo" || challenge.intent !== "charge") {
      throw new PaymentErrors.InvalidChallengeError({ id: challenge.id, reason: `expected a tempo charge challenge for realm ${config.gateway.realm}` });
    }
    if (challenge.digest !== request.bodyDigest) {
      throw new PaymentErrors.InvalidChallengeError({ id: challenge.id, reason: "the request body differs from the one this challenge was issued for" });
    }
    Expires.assert(challenge.expires, challenge.id);
    const expected = chargeRequest({ amount: BigInt(request.amount), currency: config.chain.token, recipient: config.chain.payee!, chainId: config.chain.chainId, feePayer: true });
    const offered = challenge.request as Partial<typeof expected>;
    if (offered.amount !== expected.amount || offered.currency?.toLowerCase() !== expected.currency || offered.recipient?.toLowerCase() !== expected.recipient || offered.methodDetails?.chainId !== expected.methodDetails.chainId) {
      throw new PaymentErrors.InvalidChallengeError({ id: challenge.id, reason: `challenge terms do not match this request (expected ${expected.amount} base units of ${expected.currency} to ${expected.recipient} on chain ${expected.methodDetails.chainId})` });
    }
    const payload = Methods.charge.schema.credential.payload.safeParse(credential.payload);
    if (!payload.success || payload.data.type === "proof") throw new PaymentErrors.InvalidPayloadError();

    const expiresAt = Date.parse(challenge.expires!);
    if (!(await this.replay.tryClaim(`charge:challenge:${challenge.id}`, expiresAt))) {
      throw new PaymentErrors.InvalidChallengeError({ id: challenge.id, reason: "this challenge has already been paid or is being paid; request a new one" });
    }
    let receipt: { reference: string; blockNumber?: bigint };
    const onChain = performance.now();
    this.phase.observe({ phase: "checks" }, onChain - started);
    try {
      receipt = (await this.method.broadcast!({ credential: { ...credential, payload: payload.data } as ChargeCredential, request: challenge.request } as never)) as typeof receipt;
    } catch (err) {
      await this.replay.delete(`charge:challenge:${challenge.id}`);
      throw err;
    }
    const txHash = receipt.reference.toLowerCase() as `0x${string}`;
    const recording = performance.now();
    this.phase.observe({ phase: "chain" }, recording - onChain);
    const result = await this.recordPaymentWithRetry({ request, challengeId: challenge.id, txHash, amount: BigInt(expected.amount) });
    this.phase.observe({ phase: "record" }, performance.now() - recording);
    return result;
  }

  /**
   * The money has moved on-chain by now: a transient Postgres/Redis/RPC failure must not drop the record.
   * Retries with backoff; if it still fails, the payment is logged at error level with everything needed to
   * reconcile it by hand and counted in `wr_charge_unrecorded_total` (alert on it).
   */
  private async recordPaymentWithRetry(input: RecordPaymentInput): Promise<VerifyPaymentResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.recordPayment(input);
      } catch (err) {
        if (err instanceof PaymentErrors.PaymentError) throw err;
        if (attempt >= RECORD_ATTEMPTS) {
          this.unrecorded.inc();
          this.logger.error({ err, requestId: input.request.requestId, challengeId: input.challengeId, txHash: input.txHash, amount: input.amount.toString() }, "PAID BUT UNRECORDED: charge settled on-chain but could not be recorded; reconcile by hand");
          throw err;
        }
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
      }
    }
  }

  private async recordPayment(input: RecordPaymentInput): Promise<VerifyPaymentResult> {
    const { config } = this;
    // The payer is the transaction's sender (the fee payer only sponsors gas).
    const chainReceipt = await this.clients.publicClient.getTransactionReceipt({ hash: input.txHash });
    const from = chainReceipt.from.toLowerCase();
    let payment;
    try {
      payment = await this.db.chargePayment.create({
        data: {
          challengeId: input.challengeId, txHash: input.txHash, requestId: input.request.requestId, payer: from, recipient: config.chain.payee!,
          token: config.chain.token, chainId: config.chain.chainId, amount: new Prisma.Decimal(input.amount.toString()),
          blockNumber: chainReceipt.blockNumber, status: "verified",
        },
      });
    } catch (err) {
      if (!(err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002")) throw err;
      // Our own earlier attempt (a retry after a later step failed) is the same payment; anything else is a replay.
      const existing = await this.db.chargePayment.findUnique({ where: { txHash: input.txHash } });
      if (existing?.challengeId !== input.challengeId || existing.requestId !== input.request.requestId) {
        throw new PaymentErrors.VerificationFailedError({ reason: `transaction ${input.txHash} has already paid for another request` });
      }
      payment = existing;
    }
    const verifiedAt = new Date();
    await this.queues.enqueue("payments", {
      kind: "charge.verified", paymentId: payment.id, challengeId: input.challengeId, requestId: input.request.requestId, txHash: input.txHash,
      payer: from, recipient: config.chain.payee!, token: config.chain.token, chainId: config.chain.chainId, amount: input.amount.toString(),
      blockNumber: chainReceipt.blockNumber.toString(), verifiedAt: verifiedAt.getTime(),
    });
    this.logger.info({ requestId: input.request.requestId, txHash: input.txHash, payer: from, amount: input.amount.toString() }, "charge verified");
    return { ok: true, paymentId: payment.id, payer: from as `0x${string}`, txHash: input.txHash, amount: input.amount.toString(), receipt: serializeChargeReceipt({ reference: input.txHash, timestamp: verifiedAt }) };
  }
}

function parseCredential(authorization: string) {
  try {
    return Credential.deserialize(authorization);
  } catch (err) {
    throw new PaymentErrors.MalformedCredentialError({ reason: (err as Error).message });
  }
}
