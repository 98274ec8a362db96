import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import {
  ChainRpcClient,
  decodeTempoTransaction,
  JsonRpcError,
  recoverSender,
  SECP256K1_BACKEND,
  SignatureError,
  TempoTransactionError,
  type TempoTransaction,
} from "@worldrouter/chain";
import type { ChargeRecordJob, VerifyPaymentRequest, VerifyPaymentResult } from "@worldrouter/contracts";
import { chargeRequest, paymentProblem, PaymentErrors, serializeChargeReceipt, verifyChallengeId } from "@worldrouter/mpp";
import { counter, histogram, type Logger } from "@worldrouter/observability";
import { CONFIG, JobQueues, LOGGER, METRICS, MoneyEventPublisher, PermanentJobError } from "@worldrouter/runtime";
import type { Counter, Histogram, Registry } from "prom-client";
import { Credential, Expires } from "mppx";
import { Methods } from "mppx/tempo";
import {
  assertChargeTransferLogged,
  checkSponsoredTransfer,
  parseCredentialSource,
  type ChargeExpectation,
  type SponsorPolicy,
} from "./charge-transfer.js";
import { chargeVerifiedEvent } from "./charge-verified-event.js";
import { ChargePaymentsRepository, type ChargePaymentRow, type PaymentFacts } from "./charge-payments.repository.js";
import { FeeSponsor, type SponsoredTransaction } from "./fee-sponsor.js";
import { RedisReplayStore } from "./replay-store.js";
import { paymentInProgress, paymentPending, RetryLaterError, sponsorBudgetExhausted } from "./retry-later.js";
import { SponsorBudget } from "./sponsor-budget.js";

type Hex = `0x${string}`;
/** A transfer confirmed on-chain; `payer` is the address whose tokens moved (never the fee payer). */
type SettledTransfer = {
  txHash: Hex;
  payer: Hex;
  blockNumber: bigint;
  /** Its `pending` row (absent only for a deferred record queued by an older version). */
  paymentId?: string;
};
/** A client transaction that passed every check, co-signed, and the call to simulate before broadcasting it. */
type PreparedSponsorship = {
  sponsored: SponsoredTransaction;
  sender: Hex;
  transfer: { from: Hex; to: Hex; data: Hex };
  /** The most gas it can cost the sponsor (token base units), and when it can no longer be mined (epoch s). */
  maxFee: bigint;
  validBefore: number;
};
type RecordPaymentInput = SettledTransfer & { requestId: string; challengeId: string; amount: bigint };

/**
 * A charge that settled on-chain but could not be recorded now. Not a payment problem: the client must not pay
 * again (no new challenge), and the money comes back (see recordPaymentWithRetry).
 */
export class ChargeNotRecordedError extends Error {
  override readonly name = "ChargeNotRecordedError";
  constructor(
    readonly txHash: string,
    readonly payer: string,
    deferred: boolean,
  ) {
    super(
      deferred
        ? `your payment settled on-chain (transaction ${txHash}) but could not be recorded right now; it is recorded as soon as possible and refunded to ${payer} automatically: do not pay this challenge again`
        : `your payment settled on-chain (transaction ${txHash}) but could not be recorded; contact the operator with this transaction hash for a refund to ${payer}: do not pay this challenge again`,
    );
  }
}

/**
 * The challenge was claimed by an earlier delivery of this same request (the RPC transport reran it after the
 * replica running it stopped), and that run left no payment record: it may still be running or have died after
 * broadcasting. Not a payment problem: the client must not pay again (no new challenge).
 */
export class VerificationInterruptedError extends Error {
  override readonly name = "VerificationInterruptedError";
  constructor(readonly challengeId: string) {
    super(
      `an earlier attempt at verifying this payment (challenge ${challengeId}) was interrupted and its outcome is not known yet; if it settled on-chain it is refunded automatically: do not pay this challenge again`,
    );
  }
}

/** Attempts at recording a payment that already settled on-chain (see recordPaymentWithRetry). */
const RECORD_ATTEMPTS = 5;
/**
 * EIP-7966 errors of `eth_sendRawTransactionSync` for a transaction that is in the mempool but not mined yet
 * (4: the node's wait timed out; 5: not ready, e.g. a nonce gap): it may still be mined. Any other error object
 * means the node refused it.
 */
const STILL_IN_MEMPOOL_CODES: ReadonlySet<number> = new Set([4, 5]);
/** Retry-After of a credential whose payment is still being verified, or whose outcome is being looked up. */
const RETRY_AFTER_SECONDS = 2;

/**
 * Verifies a charge credential against the challenge it answers and the chain, then records the payment.
 * Order matters for money: every check that needs no chain runs first (including the sender's signature
 * and our co-signature); the challenge id is claimed before broadcasting so one challenge can never make
 * the payer pay twice; the tx hash is claimed in Redis and by the `charge_payments.txHash` unique key
 * (Postgres, the durable truth). One chain call confirms a pushed hash; a pulled transaction costs a
 * simulation and a sync broadcast, whose receipt is the confirmation.
 */
@Injectable()
export class VerifyChargeUseCase implements OnApplicationShutdown {
  private readonly chain: ChainRpcClient;
  private readonly sponsor: FeeSponsor | undefined;
  private readonly sponsorPolicy: SponsorPolicy;
  private readonly outcomes: Counter<"outcome">;
  private readonly phase: Histogram<"phase">;
  private readonly unrecorded: Counter;
  private readonly deferred: Counter;
  private readonly unknownOutcome: Counter;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(ChargePaymentsRepository) private readonly payments: ChargePaymentsRepository,
    @Inject(SponsorBudget) private readonly budget: SponsorBudget,
    @Inject(JobQueues) private readonly queues: JobQueues,
    @Inject(MoneyEventPublisher) private readonly moneyEvents: MoneyEventPublisher,
    @Inject(RedisReplayStore) private readonly replay: RedisReplayStore,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) metrics: Registry,
  ) {
    this.outcomes = counter(metrics, "wr_charge_verifications_total", "Charge credentials by outcome (verified, or the problem type)", [
      "outcome",
    ]);
    this.phase = histogram(
      metrics,
      "wr_charge_verify_phase_ms",
      "Verification phases: checks (no chain), chain (simulate, broadcast, confirm), record (Postgres + charge.verified money event)",
      ["phase"],
    );
    this.unrecorded = counter(
      metrics,
      "wr_charge_unrecorded_total",
      "Charges settled on-chain that could not be recorded nor queued for recording (reconcile by hand)",
    );
    this.deferred = counter(
      metrics,
      "wr_charge_recording_deferred_total",
      "Charges settled on-chain whose recording was handed to the charge-records queue (the client got a 503; refunded by the orphan sweep)",
    );
    this.unknownOutcome = counter(
      metrics,
      "wr_charge_broadcast_unknown_total",
      "Sponsored charges broadcast whose outcome is unknown (may still be mined; claims kept; reconcile by hand)",
    );
    const { chain, sponsor } = config;
    this.chain = new ChainRpcClient({ url: chain.rpcUrl, timeoutMs: chain.rpcTimeoutMs });
    // The sponsor pays gas in the payment token: it holds it anyway, and the token has FeeAMM liquidity.
    this.sponsor = chain.feePayerPrivateKey ? new FeeSponsor(chain.feePayerPrivateKey, chain.token, sponsor.maxInFlight) : undefined;
    this.sponsorPolicy = {
      feeToken: chain.token,
      maxGas: sponsor.maxGas,
      maxFeePerGas: sponsor.maxFeePerGas,
      maxTotalFee: sponsor.maxTotalFee,
    };
    if (SECP256K1_BACKEND !== "native")
      logger.warn("no native secp256k1 build for this platform: signatures are checked in pure JS (~25x slower per charge)");
  }

  async verify(request: VerifyPaymentRequest): Promise<VerifyPaymentResult> {
    try {
      const result = await this.verifyOrThrow(request);
      this.outcomes.inc({ outcome: "verified" });
      return result;
    } catch (err) {
      if (err instanceof RetryLaterError) {
        this.outcomes.inc({ outcome: err.outcome });
        return { ok: false, problem: err.problem };
      }
      if (err instanceof VerificationInterruptedError) {
        this.outcomes.inc({ outcome: "interrupted" });
        return {
          ok: false,
          problem: {
            type: "https://worldrouter.dev/problems/payment-verification-interrupted",
            title: "Payment Verification Interrupted",
            status: 503,
            detail: err.message,
          },
        };
      }
      if (err instanceof ChargeNotRecordedError) {
        this.outcomes.inc({ outcome: "not-recorded" });
        return {
          ok: false,
          problem: {
            type: "https://worldrouter.dev/problems/payment-not-recorded",
            title: "Payment Not Recorded",
            status: 503,
            detail: err.message,
          },
        };
      }
      this.outcomes.inc({ outcome: err instanceof PaymentErrors.PaymentError ? err.type.split("/").pop()! : "internal-error" });
      if (err instanceof PaymentErrors.PaymentError) {
        this.logger.info({ requestId: request.requestId, problem: err.type, detail: err.message }, "charge rejected");
        return { ok: false, problem: paymentProblem(err) };
      }
      this.logger.error({ requestId: request.requestId, err }, "charge verification failed unexpectedly");
      return {
        ok: false,
        problem: paymentProblem(
          new PaymentErrors.VerificationFailedError({ reason: `the payment could not be verified: ${(err as Error).message}` }),
        ),
      };
    }
  }

  private async verifyOrThrow(request: VerifyPaymentRequest): Promise<VerifyPaymentResult> {
    const started = performance.now();
    const credential = parseCredential(request.authorization);
    const challenge = credential.challenge;
    const { config } = this;
    if (!verifyChallengeId(challenge, config.mpp.secretKey)) {
      throw new PaymentErrors.InvalidChallengeError({
        id: challenge.id,
        reason: "challenge was not issued by this server (HMAC mismatch)",
      });
    }
    if (challenge.realm !== config.gateway.realm || challenge.method !== "tempo" || challenge.intent !== "charge") {
      throw new PaymentErrors.InvalidChallengeError({
        id: challenge.id,
        reason: `expected a tempo charge challenge for realm ${config.gateway.realm}`,
      });
    }
    if (challenge.digest !== request.bodyDigest) {
      throw new PaymentErrors.InvalidChallengeError({
        id: challenge.id,
        reason: "the request body differs from the one this challenge was issued for",
      });
    }
    Expires.assert(challenge.expires, challenge.id);
    const expected = chargeRequest({
      amount: BigInt(request.amount),
      currency: config.chain.token,
      recipient: config.chain.payee!,
      chainId: config.chain.chainId,
      feePayer: true,
    });
    const offered = challenge.request as Partial<typeof expected>;
    if (
      offered.amount !== expected.amount ||
      offered.currency?.toLowerCase() !== expected.currency ||
      offered.recipient?.toLowerCase() !== expected.recipient ||
      offered.methodDetails?.chainId !== expected.methodDetails.chainId
    ) {
      throw new PaymentErrors.InvalidChallengeError({
        id: challenge.id,
        reason: `challenge terms do not match this request (expected ${expected.amount} base units of ${expected.currency} to ${expected.recipient} on chain ${expected.methodDetails.chainId})`,
      });
    }
    // No replica prices below the floor that covers the sponsor's gas (a stale or hand-made quote included).
    if (BigInt(expected.amount) < config.pricing.minimumCharge) {
      throw new PaymentErrors.InvalidChallengeError({
        id: challenge.id,
        reason: `the amount ${expected.amount} is below the minimum charge of ${config.pricing.minimumCharge} base units`,
      });
    }
    const payload = Methods.charge.schema.credential.payload.safeParse(credential.payload);
    if (!payload.success || payload.data.type === "proof") throw new PaymentErrors.InvalidPayloadError();

    const expiresAt = Date.parse(challenge.expires!);
    const charge: ChargeExpectation = {
      token: expected.currency,
      payee: expected.recipient,
      amount: BigInt(expected.amount),
      chainId: expected.methodDetails.chainId,
      realm: challenge.realm,
      challengeId: challenge.id,
      challengeExpiresAt: expiresAt,
    };
    // Everything the chain is not needed for, before anything is claimed.
    const sponsored =
      payload.data.type === "transaction" ? this.prepareSponsoredTransaction(payload.data.signature as Hex, charge) : undefined;
    const pushedBy = payload.data.type === "hash" ? parseCredentialSource(credential.source, charge.chainId) : undefined;

    // One challenge never makes a payer pay twice, one transaction never pays twice: both claimed before the chain
    // (a pulled transaction's hash is known now: one round trip for both; a pushed one is claimed once its receipt checks out).
    const challengeKey = `charge:challenge:${challenge.id}`;
    const txKey = sponsored && `charge:tx:${sponsored.sponsored.hash}`;
    const held = await this.replay.tryClaimAll(txKey ? [challengeKey, txKey] : [challengeKey], expiresAt, request.requestId);
    if (held.includes(challengeKey))
      return this.answerClaimedChallenge(request.requestId, challenge.id, (await this.replay.holder(challengeKey)) === request.requestId);
    if (held.length > 0) throw new PaymentErrors.VerificationFailedError({ reason: "Transaction hash has already been used" });
    const onChain = performance.now();
    this.phase.observe({ phase: "checks" }, onChain - started);
    const settled = sponsored
      ? await this.broadcastSponsoredTransaction(sponsored, charge, request.requestId, [challengeKey, txKey!])
      : await this.confirmPushedTransfer(
          (payload.data as { hash: Hex }).hash.toLowerCase() as Hex,
          pushedBy,
          charge,
          challengeKey,
          request.requestId,
        );
    const recording = performance.now();
    this.phase.observe({ phase: "chain" }, recording - onChain);
    const result = await this.recordPaymentWithRetry({
      ...settled,
      requestId: request.requestId,
      challengeId: challenge.id,
      amount: charge.amount,
    });
    this.phase.observe({ phase: "record" }, performance.now() - recording);
    return result;
  }

  /**
   * The challenge is claimed already: by an earlier delivery of this same request (the RPC transport reran it after
   * the replica running it stopped), or by another request carrying the same credential (a client retrying after a
   * 503, or sending it twice). The payment is served to one request only, once it is known to be mined; while its
   * outcome is not known the answer is "retry later", never a new challenge to pay.
   */
  private async answerClaimedChallenge(requestId: string, challengeId: string, sameRequest: boolean): Promise<VerifyPaymentResult> {
    const payment = await this.payments.byChallenge(challengeId);
    if (!payment) {
      if (sameRequest) throw new VerificationInterruptedError(challengeId);
      throw paymentInProgress(challengeId, RETRY_AFTER_SECONDS);
    }
    switch (payment.status) {
      case "pending":
        // Still broadcasting (resolveAfter ahead) or broadcast with an unknown outcome: the job looks it up.
        if (!sameRequest && payment.resolveAfter !== null && payment.resolveAfter.getTime() > Date.now())
          throw paymentInProgress(challengeId, RETRY_AFTER_SECONDS);
        throw paymentPending(payment.txHash, RETRY_AFTER_SECONDS);
      case "failed":
        throw new PaymentErrors.VerificationFailedError({
          reason: `transaction ${payment.txHash} for this challenge was not mined or reverted: nothing was paid; pay a new challenge`,
        });
      case "verified": {
        const served = await this.payments.claimServed(challengeId, requestId);
        if (served) {
          this.logger.info(
            { requestId, txHash: served.txHash, firstRequestId: payment.requestId },
            "charge verified earlier: served to this request",
          );
          return paidResult(served);
        }
        break;
      }
      default:
        if (payment.servedRequestId === requestId || (sameRequest && payment.requestId === requestId)) return paidResult(payment);
    }
    throw new PaymentErrors.InvalidChallengeError({
      id: challengeId,
      reason: "this challenge has already been paid and used; request a new one",
    });
  }

  /** Decodes the client's transaction once, checks it, recovers its sender and co-signs it (no I/O). */
  private prepareSponsoredTransaction(serialized: Hex, charge: ChargeExpectation): PreparedSponsorship {
    if (!this.sponsor)
      throw new PaymentErrors.VerificationFailedError({ reason: "fee-sponsored payments are unavailable: no fee payer is configured" });
    let transaction: TempoTransaction;
    try {
      transaction = decodeTempoTransaction(serialized);
    } catch (err) {
      if (err instanceof TempoTransactionError) throw new PaymentErrors.InvalidPayloadError({ reason: err.message });
      throw err;
    }
    checkSponsoredTransfer(transaction, charge, this.sponsorPolicy, Date.now());
    let sender: Hex;
    try {
      sender = recoverSender(transaction);
    } catch (err) {
      if (err instanceof SignatureError)
        throw new PaymentErrors.VerificationFailedError({ reason: `the sender signature is invalid: ${err.message}` });
      throw err;
    }
    if (transaction.feePayer.kind === "sender" && transaction.feePayer.sender !== sender) {
      throw new PaymentErrors.VerificationFailedError({
        reason: `the envelope names sender ${transaction.feePayer.sender}, but the signature is ${sender}'s`,
      });
    }
    const call = transaction.calls[0]!;
    return {
      sponsored: this.sponsor.coSign(transaction, sender),
      sender,
      transfer: { from: sender, to: call.to!, data: call.data },
      maxFee: SponsorBudget.maxFee(transaction.gas, transaction.maxFeePerGas),
      validBefore: transaction.validBefore!,
    };
  }

  /**
   * Reserves the sponsor's budget, simulates the claimed, co-signed transaction's transfer (so the sponsor never pays
   * gas for a transaction that would revert), records the payment `pending` with its hash, broadcasts it
   * synchronously and confirms the transfer from that receipt. The claims (and the budget) are given back only while
   * nothing can have reached the chain. An unknown outcome (timeout, any JSON-RPC error: an error is not a refusal
   * until a receipt lookup says so) answers "pending": the charge-outcomes job finds the outcome.
   */
  private async broadcastSponsoredTransaction(
    { sponsored, sender, transfer, maxFee, validBefore }: PreparedSponsorship,
    charge: ChargeExpectation,
    requestId: string,
    claims: string[],
  ): Promise<SettledTransfer> {
    const reservation = await this.budget.reserve(sender, maxFee);
    if (!reservation.ok) {
      await Promise.all(claims.map((key) => this.replay.delete(key)));
      throw sponsorBudgetExhausted(reservation.scope, reservation.retryAfterSeconds);
    }
    let recorded = false;
    let broadcast = false;
    try {
      try {
        await this.chain.call(transfer);
      } catch (err) {
        if (err instanceof JsonRpcError)
          throw new PaymentErrors.VerificationFailedError({ reason: `the transfer would fail on-chain: ${err.message}` });
        throw err;
      }
      const facts = this.paymentFacts(sponsored.hash, sender, charge, requestId);
      // Later than this verification can still be running: until then only this verification settles the row.
      const paymentId = await this.payments.insertPending(facts, 2 * this.config.chain.rpcTimeoutMs, validBefore);
      if (!paymentId) throw new PaymentErrors.VerificationFailedError({ reason: "Transaction hash has already been used" });
      recorded = true;
      const receipt = await this.sponsor!.withBroadcastSlot(() => {
        broadcast = true;
        return this.chain.sendRawTransactionSync(sponsored.serialized);
      });
      if (receipt.transactionHash !== sponsored.hash) {
        throw new PaymentErrors.VerificationFailedError({
          reason: `the node reports transaction ${receipt.transactionHash}, not the broadcast ${sponsored.hash}`,
        });
      }
      try {
        assertChargeTransferLogged(receipt, charge, sender);
      } catch (err) {
        await this.payments.markFailed(sponsored.hash);
        throw err;
      }
      return { txHash: sponsored.hash, payer: sender, blockNumber: receipt.blockNumber, paymentId };
    } catch (err) {
      if (!broadcast) {
        await Promise.all([
          ...claims.map((key) => this.replay.delete(key)),
          reservation.release(),
          recorded ? this.payments.deletePending(sponsored.hash) : undefined,
        ]);
        throw err;
      }
      if (err instanceof PaymentErrors.PaymentError) throw err;
      // Broadcast with an unknown outcome: it may still be mined (until its validBefore), so both claims stay.
      this.unknownOutcome.inc();
      this.logger.warn(
        {
          err,
          txHash: sponsored.hash,
          payer: sender,
          challengeId: charge.challengeId,
          amount: charge.amount.toString(),
          refused: err instanceof JsonRpcError && !STILL_IN_MEMPOOL_CODES.has(err.code),
        },
        "sponsored charge broadcast with unknown outcome; charge-outcomes looks its receipt up",
      );
      await this.payments.markOutcomeUnknown(sponsored.hash).catch((cause: unknown) =>
        // The row's resolveAfter passes anyway: the job resolves it a little later.
        this.logger.warn({ err: cause, txHash: sponsored.hash }, "could not hand the pending charge to charge-outcomes early"),
      );
      throw paymentPending(sponsored.hash, RETRY_AFTER_SECONDS);
    }
  }

  /** One receipt lookup, the transfer checks of mppx's validateHashCredential, then the hash is claimed once. */
  private async confirmPushedTransfer(
    hash: Hex,
    source: Hex | undefined,
    charge: ChargeExpectation,
    challengeKey: string,
    requestId: string,
  ): Promise<SettledTransfer> {
    try {
      const receipt = await this.chain.getTransactionReceipt(hash);
      if (!receipt) throw new PaymentErrors.VerificationFailedError({ reason: `transaction ${hash} is not mined (no receipt)` });
      const payer = source ?? receipt.from;
      assertChargeTransferLogged(receipt, charge, payer);
      if (!(await this.replay.tryClaim(`charge:tx:${hash}`, charge.challengeExpiresAt))) {
        throw new PaymentErrors.VerificationFailedError({ reason: "Transaction hash has already been used" });
      }
      // Mined already; recorded `pending` first like a sponsored charge, so its event can go out before the row says
      // `verified` (a verifier dying in between leaves it to charge-outcomes, which finds the receipt).
      const facts = this.paymentFacts(hash, payer, charge, requestId);
      const paymentId = await this.payments.insertPending(facts, 2 * this.config.chain.rpcTimeoutMs, Math.floor(Date.now() / 1000));
      if (!paymentId) throw new PaymentErrors.VerificationFailedError({ reason: "Transaction hash has already been used" });
      return { txHash: hash, payer, blockNumber: receipt.blockNumber, paymentId };
    } catch (err) {
      await this.replay.delete(challengeKey);
      throw err;
    }
  }

  /**
   * The money has moved on-chain by now: a transient Postgres failure must not drop the record. Retries with
   * backoff; if it still fails, the record goes to the durable `charge-records` queue, retried for days (the
   * payment is then refunded by settlement's orphan sweep: nothing was served), and the client is told not to pay
   * again. Only if Redis refuses that too is the payment logged "PAID BUT UNRECORDED" with everything needed to
   * reconcile it by hand, and counted in `wr_charge_unrecorded_total` (alert on it).
   */
  private async recordPaymentWithRetry(input: RecordPaymentInput): Promise<VerifyPaymentResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.recordPayment(input, input.requestId);
      } catch (err) {
        if (err instanceof PaymentErrors.PaymentError) throw err;
        if (attempt >= RECORD_ATTEMPTS) throw await this.deferRecording(input, err as Error);
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
      }
    }
  }

  private async deferRecording(input: RecordPaymentInput, cause: Error): Promise<ChargeNotRecordedError> {
    const facts = {
      requestId: input.requestId,
      challengeId: input.challengeId,
      txHash: input.txHash,
      payer: input.payer,
      amount: input.amount.toString(),
    };
    try {
      await this.queues.enqueue("charge-records", {
        ...facts,
        ...(input.paymentId ? { paymentId: input.paymentId } : {}),
        blockNumber: input.blockNumber.toString(),
        settledAt: Date.now(),
      });
      this.deferred.inc();
      this.logger.error(
        { err: cause, ...facts },
        "charge settled on-chain but Postgres refused the record; recording deferred to the charge-records queue (it will be refunded)",
      );
      return new ChargeNotRecordedError(input.txHash, input.payer, true);
    } catch (err) {
      this.unrecorded.inc();
      this.logger.error(
        { err, cause, ...facts },
        "PAID BUT UNRECORDED: charge settled on-chain but could not be recorded nor queued; reconcile by hand",
      );
      return new ChargeNotRecordedError(input.txHash, input.payer, false);
    }
  }

  /** The `charge-records` queue's handler: throws (and is retried) until the payment is recorded. */
  async recordDeferred(job: ChargeRecordJob): Promise<void> {
    try {
      await this.recordPayment(
        { ...job, txHash: job.txHash as Hex, payer: job.payer as Hex, amount: BigInt(job.amount), blockNumber: BigInt(job.blockNumber) },
        null,
      );
    } catch (err) {
      // The transaction is recorded for another request: retrying cannot change that.
      if (err instanceof PaymentErrors.PaymentError) throw new PermanentJobError(err.message);
      throw err;
    }
  }

  /**
   * The payment's money event, then the payment `verified`; served to `servedRequestId` (none: a deferred record, not
   * served). Event first: a verifier that dies in between leaves the row `pending` for charge-outcomes (which publishes
   * the event again; settlement applies it once). The other order could leave a `verified` payment whose event never
   * existed: served to its request (the RPC rerun finds it verified) but never booked, its usage deferred forever, and
   * finally refunded by the orphan sweep although it was served.
   */
  private async recordPayment(input: RecordPaymentInput, servedRequestId: string | null): Promise<VerifyPaymentResult> {
    const facts = this.paymentFacts(input.txHash, input.payer, { challengeId: input.challengeId, amount: input.amount }, input.requestId);
    const verifiedAt = new Date();
    if (input.paymentId) await this.moneyEvents.publish(chargeVerifiedEvent(input.paymentId, facts, input.blockNumber, verifiedAt));
    const paymentId = await this.payments.settleVerified(facts, input.blockNumber, servedRequestId);
    if (!paymentId)
      throw new PaymentErrors.VerificationFailedError({ reason: `transaction ${input.txHash} has already paid for another request` });
    // A deferred record queued without its row's id (by an earlier version): the old order.
    if (!input.paymentId) await this.moneyEvents.publish(chargeVerifiedEvent(paymentId, facts, input.blockNumber, verifiedAt));
    this.logger.info(
      { requestId: input.requestId, txHash: input.txHash, payer: input.payer, amount: input.amount.toString() },
      "charge verified",
    );
    return {
      ok: true,
      paymentId,
      payer: input.payer,
      txHash: input.txHash,
      amount: input.amount.toString(),
      receipt: serializeChargeReceipt({ reference: input.txHash, timestamp: verifiedAt }),
    };
  }

  private paymentFacts(
    txHash: Hex,
    payer: Hex,
    charge: Pick<ChargeExpectation, "challengeId" | "amount">,
    requestId: string,
  ): PaymentFacts {
    const { chain } = this.config;
    return {
      challengeId: charge.challengeId,
      txHash,
      requestId,
      payer,
      recipient: chain.payee!,
      token: chain.token,
      chainId: chain.chainId,
      amount: charge.amount,
    };
  }

  async onApplicationShutdown() {
    await this.chain.close();
  }
}

function paidResult(payment: ChargePaymentRow): VerifyPaymentResult {
  return {
    ok: true,
    paymentId: payment.id,
    payer: payment.payer,
    txHash: payment.txHash,
    amount: payment.amount,
    receipt: serializeChargeReceipt({ reference: payment.txHash, timestamp: payment.createdAt }),
  };
}

function parseCredential(authorization: string) {
  try {
    return Credential.deserialize(authorization);
  } catch (err) {
    throw new PaymentErrors.MalformedCredentialError({ reason: (err as Error).message });
  }
}
