import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { ChainRpcClient } from "@worldrouter/chain";
import { PaymentErrors } from "@worldrouter/mpp";
import { counter, type Logger } from "@worldrouter/observability";
import { CONFIG, JobQueues, LOGGER, METRICS, MoneyEventPublisher } from "@worldrouter/runtime";
import type { Counter, Registry } from "prom-client";
import { ChargePaymentsRepository, type ChargePaymentRow, type PaymentFacts } from "./charge-payments.repository.js";
import { assertChargeTransferLogged } from "./charge-transfer.js";
import { chargeVerifiedEvent } from "./charge-verified-event.js";

type Hex = `0x${string}`;

const TICK_EVERY_MS = 2_000;
const BATCH = 200;
/** A transaction without a receipt this long after its validBefore can no longer be mined (block times, clock skew). */
const NOT_MINEABLE_AFTER_MS = 30_000;

export type ChargeOutcome = "verified" | "failed" | "unknown";

/**
 * Finds the outcome of sponsored charges recorded `pending` whose verification ended without one (broadcast timed
 * out, a JSON-RPC error, the verifier died between broadcast and settling the row): a receipt with the charge's
 * transfer makes the payment `verified` (its `charge.verified` event first, so a crash in between only repeats an
 * event settlement applies once); a reverted receipt, or none once the transaction can no longer be mined, makes it
 * `failed` (nothing was paid). A verified payment is then served to the client's retry of the same credential, or
 * refunded by settlement's orphan sweep if nobody comes back for it.
 */
@Injectable()
export class ResolveChargeOutcomesUseCase implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly chain: ChainRpcClient;
  private readonly resolved: Counter<"outcome">;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(ChargePaymentsRepository) private readonly payments: ChargePaymentsRepository,
    @Inject(MoneyEventPublisher) private readonly moneyEvents: MoneyEventPublisher,
    @Inject(JobQueues) private readonly queues: JobQueues,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) metrics: Registry,
  ) {
    this.chain = new ChainRpcClient({ url: config.chain.rpcUrl, timeoutMs: config.chain.rpcTimeoutMs });
    this.resolved = counter(metrics, "wr_charge_outcomes_resolved_total", "Pending charge payments resolved from their receipts", [
      "outcome",
    ]);
  }

  /** Every replica registers the same scheduler: one job per tick, run by one replica. */
  async onApplicationBootstrap() {
    await this.queues
      .queue("charge-outcomes")
      .upsertJobScheduler("charge-outcomes", { every: TICK_EVERY_MS }, { name: "charge-outcomes", data: { requestedAt: 0 } });
  }

  /** One tick: every due pending payment, one receipt lookup each. A lookup that fails leaves it for the next tick. */
  async resolveDue(now = Date.now()): Promise<Map<string, ChargeOutcome>> {
    const outcomes = new Map<string, ChargeOutcome>();
    for (const payment of await this.payments.duePending(BATCH)) {
      try {
        outcomes.set(payment.id, await this.resolve(payment, now));
      } catch (err) {
        this.logger.warn({ err, txHash: payment.txHash }, "could not look a pending charge's receipt up; retried next tick");
        outcomes.set(payment.id, "unknown");
      }
    }
    return outcomes;
  }

  private async resolve(payment: ChargePaymentRow, now: number): Promise<ChargeOutcome> {
    const facts = this.facts(payment);
    const receipt = await this.chain.getTransactionReceipt(payment.txHash);
    if (!receipt) {
      const until = payment.mineableUntil?.getTime() ?? payment.createdAt.getTime();
      if (now < until + NOT_MINEABLE_AFTER_MS) return "unknown";
      return this.fail(payment, "no receipt and it can no longer be mined");
    }
    try {
      assertChargeTransferLogged(
        receipt,
        {
          token: facts.token,
          payee: facts.recipient,
          amount: facts.amount,
          chainId: facts.chainId,
          realm: this.config.gateway.realm,
          challengeId: facts.challengeId,
          challengeExpiresAt: 0,
        },
        facts.payer,
      );
    } catch (err) {
      if (err instanceof PaymentErrors.PaymentError) return this.fail(payment, err.message);
      throw err;
    }
    await this.moneyEvents.publish(chargeVerifiedEvent(payment.id, facts, receipt.blockNumber, new Date()));
    await this.payments.settleVerified(facts, receipt.blockNumber, null);
    this.resolved.inc({ outcome: "verified" });
    this.logger.info(
      { requestId: payment.requestId, txHash: payment.txHash, payer: payment.payer, amount: payment.amount },
      "pending charge mined: verified (served to a retry of its credential, else refunded by the orphan sweep)",
    );
    return "verified";
  }

  private async fail(payment: ChargePaymentRow, reason: string): Promise<ChargeOutcome> {
    if (await this.payments.markFailed(payment.txHash)) {
      this.resolved.inc({ outcome: "failed" });
      this.logger.info({ requestId: payment.requestId, txHash: payment.txHash, reason }, "pending charge failed: nothing was paid");
    }
    return "failed";
  }

  private facts(payment: ChargePaymentRow): PaymentFacts {
    const { chain } = this.config;
    return {
      challengeId: payment.challengeId,
      txHash: payment.txHash,
      requestId: payment.requestId,
      payer: payment.payer.toLowerCase() as Hex,
      recipient: chain.payee!,
      token: chain.token,
      chainId: chain.chainId,
      amount: BigInt(payment.amount),
    };
  }

  async onApplicationShutdown() {
    await this.chain.close();
  }
}
