import { Inject, Injectable } from "@nestjs/common";
import type {
  ChargeVerifiedEvent,
  InferenceStartedEvent,
  MoneyEvent,
  SessionDepositedEvent,
  SessionSettledEvent,
  SessionSpentEvent,
  UsageEvent,
} from "@worldrouter/contracts";
import type { GatedPosting } from "@worldrouter/db";
import type { Logger } from "@worldrouter/observability";
import { actualCost, createModelRegistry } from "@worldrouter/pricing";
import { JobQueues, LOGGER } from "@worldrouter/runtime";
import { chargeReceived, chargeUsage } from "../ledger/charge-postings.js";
import { depositKey, LedgerRepository, type UsageRecord } from "../ledger/ledger.repository.js";
import { sessionDeposited, sessionSettled, sessionSpent } from "../ledger/session-postings.js";

export interface AppliedBatch {
  /** Positions (in the batch) of events that wait for another one: a usage whose payment is not applied yet. */
  deferred: Set<number>;
}

/**
 * Applies a batch of money events in ONE transaction, exactly once in effect (each statement takes its events'
 * idempotency claims), in the order a request's events happen: payments, then starts, then usage.
 *   charge.verified   the on-chain transfer's `Settlement` row and the "charge received" posting
 *   inference.started the request's `pending` row with its start: from here its payment is never swept for refund
 *   session.deposited the "deposited" posting of a channel's open or top-up
 *   session.settled   a channel settle or close: its `Settlement` row, the channel's settled amount (closed), its posting
 *   session.spent     the channel's `spent` raised by what a session request spent, and its "spent" posting
 *   inference.usage   the request's row completed and, for a charge still `verified`, the payment `consumed` and
 *                     billed at actual cost, or (the inference served nothing) `refunding` with a refund queued
 * A usage whose payment event is not applied yet (two replicas, or a reclaim, can reorder them) is deferred, not
 * failed. A payment no longer `verified` (swept for refund) is left as it is and bills nothing.
 */
@Injectable()
export class ApplyMoneyEventsUseCase {
  private readonly models = createModelRegistry();

  constructor(
    @Inject(LedgerRepository) private readonly ledger: LedgerRepository,
    @Inject(JobQueues) private readonly queues: JobQueues,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async apply(events: MoneyEvent[]): Promise<AppliedBatch> {
    const payments = new Map<string, ChargeVerifiedEvent>();
    const starts = new Map<string, InferenceStartedEvent>();
    const usages = new Map<string, UsageEvent>();
    const spends = new Map<string, SessionSpentEvent>();
    const deposits = new Map<string, SessionDepositedEvent>();
    const payouts = new Map<string, SessionSettledEvent>();
    // A batch can hold an event twice (a reclaimed entry next to its redelivery): one row per key per statement.
    for (const event of events) {
      switch (event.kind) {
        case "charge.verified":
          if (!payments.has(event.paymentId)) payments.set(event.paymentId, event);
          break;
        case "inference.started":
          if (!starts.has(event.requestId)) starts.set(event.requestId, event);
          break;
        case "inference.usage":
          if (!usages.has(event.requestId)) usages.set(event.requestId, event);
          break;
        case "session.spent":
          if (!spends.has(event.requestId)) spends.set(event.requestId, event);
          break;
        case "session.deposited":
          if (!deposits.has(depositKey(event))) deposits.set(depositKey(event), event);
          break;
        case "session.settled":
          if (!payouts.has(event.txHash)) payouts.set(event.txHash, event);
          break;
        default:
          event satisfies never;
      }
    }

    const deferredRequests = new Set<string>();
    const refunds: { paymentId: string; requestId: string; errorClass: string | null }[] = [];
    await this.ledger.inTransaction(async (tx) => {
      if (payments.size) {
        const batch = [...payments.values()];
        const postings = batch.map(
          (e): GatedPosting => ({
            gate: e.paymentId,
            posting: chargeReceived({ paymentId: e.paymentId, payer: e.payer, token: e.token, amount: BigInt(e.amount) }),
          }),
        );
        await this.ledger.recordChargePayments(tx, batch, postings);
      }
      if (starts.size) await this.ledger.recordInferenceStarts(tx, [...starts.values()]);
      if (deposits.size) {
        const batch = [...deposits.values()];
        await this.ledger.recordSessionDeposits(
          tx,
          batch,
          batch.map((e) => ({ gate: depositKey(e), posting: sessionDeposited({ ...e, amount: BigInt(e.amount) }) })),
        );
      }
      if (payouts.size) {
        const batch = [...payouts.values()];
        await this.ledger.recordSessionSettlements(
          tx,
          batch,
          batch.map((e) => ({
            gate: e.txHash,
            posting: sessionSettled({ ...e, captured: BigInt(e.captured), returned: BigInt(e.returned) }),
          })),
        );
      }
      if (spends.size) {
        const batch = [...spends.values()];
        await this.ledger.recordSessionSpends(
          tx,
          batch,
          batch.map((e) => ({
            gate: e.requestId,
            posting: sessionSpent({ requestId: e.requestId, channelId: e.channelId, amount: BigInt(e.amount) }),
          })),
        );
      }
      if (usages.size) {
        const charged = [...usages.values()].flatMap((e) => (e.intent === "charge" && e.chargePaymentId ? [e.chargePaymentId] : []));
        const locked = charged.length ? await this.ledger.lockChargePayments(tx, [...new Set(charged)]) : new Map();
        const records: UsageRecord[] = [];
        const postings: GatedPosting[] = [];
        for (const event of usages.values()) {
          const cost = this.actualCost(event);
          const paymentId = event.intent === "charge" ? event.chargePaymentId : undefined;
          if (!paymentId) {
            records.push({ event, actualCost: cost, paymentStatus: null });
            continue;
          }
          const payment = locked.get(paymentId);
          if (!payment?.applied) {
            deferredRequests.add(event.requestId);
            continue;
          }
          const servedNothing = event.status !== "succeeded" && event.completionTokens === 0;
          let paymentStatus: UsageRecord["paymentStatus"] = null;
          if (payment.status === "verified") {
            paymentStatus = servedNothing ? "refunding" : "consumed";
            // A second usage naming the same payment (in this batch) finds it settled.
            payment.status = paymentStatus;
            if (!servedNothing)
              postings.push({
                gate: event.requestId,
                posting: chargeUsage({
                  requestId: event.requestId,
                  payer: payment.payer,
                  paid: payment.paid,
                  actualCost: cost ?? payment.paid,
                }),
              });
          }
          records.push({ event, actualCost: cost, paymentStatus });
          // Also on a redelivery after a crash between COMMIT and the enqueue: a payment marked `refunding` by
          // its usage always gets its refund job (the job id makes this idempotent).
          if (servedNothing && payment.status === "refunding")
            refunds.push({ paymentId, requestId: event.requestId, errorClass: event.errorClass });
        }
        if (records.length) await this.ledger.recordUsages(tx, records, postings);
      }
    });

    for (const refund of refunds) {
      this.logger.warn(refund, "inference served nothing after payment; refunding on-chain");
      await this.queues.enqueue("settlement", { kind: "refund", reference: refund.paymentId, requestedAt: Date.now() });
    }
    const deferred = new Set<number>();
    for (const [index, event] of events.entries())
      if (event.kind === "inference.usage" && deferredRequests.has(event.requestId)) deferred.add(index);
    return { deferred };
  }

  private actualCost(event: UsageEvent): bigint | null {
    const model = this.models.getModel(event.model);
    return model
      ? actualCost({
          model,
          promptTokens: BigInt(event.promptTokens),
          completionTokens: BigInt(event.completionTokens),
          cachedTokens: BigInt(event.cachedTokens),
          cacheWriteTokens: BigInt(event.cacheWriteTokens),
        })
      : null;
  }
}
