import { Inject, Injectable } from "@nestjs/common";
import type { UsageEvent } from "@worldrouter/contracts";
import type { Logger } from "@worldrouter/observability";
import { actualCost, createModelRegistry } from "@worldrouter/pricing";
import { JobQueues, LOGGER } from "@worldrouter/runtime";
import { chargeUsage } from "../ledger/charge-postings.js";
import { LedgerRepository, type ChargeUsage, type PaymentFacts } from "../ledger/ledger.repository.js";

/**
 * Records one request's usage exactly once: the `InferenceRequest` (estimated next to actual cost) and, for a
 * charge, the ledger transaction consuming the payment. A charge whose inference served nothing is not
 * billed: it is queued for an on-chain refund instead. A payment no longer `verified` (swept for refund)
 * is left as it is and bills nothing.
 */
@Injectable()
export class RecordUsageUseCase {
  private readonly models = createModelRegistry();

  constructor(
    @Inject(LedgerRepository) private readonly ledger: LedgerRepository,
    @Inject(JobQueues) private readonly queues: JobQueues,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async record(event: UsageEvent): Promise<void> {
    const model = this.models.getModel(event.model);
    const cost = model
      ? actualCost({
          model,
          promptTokens: BigInt(event.promptTokens),
          completionTokens: BigInt(event.completionTokens),
          cachedTokens: BigInt(event.cachedTokens),
          cacheWriteTokens: BigInt(event.cacheWriteTokens),
        })
      : null;
    const paymentId = event.intent === "charge" ? event.chargePaymentId : undefined;
    if (!paymentId) {
      await this.ledger.recordUsage(event, cost, null);
      return;
    }
    const servedNothing = event.status !== "succeeded" && event.completionTokens === 0;
    const charge = (facts: PaymentFacts): ChargeUsage => ({
      paymentId,
      facts,
      posting: servedNothing
        ? null
        : chargeUsage({ requestId: event.requestId, payer: facts.payer, paid: facts.paid, actualCost: cost ?? facts.paid }),
    });
    // The event states what was paid and by whom; the payment
    // row stays the truth: if it disagrees nothing was written, and the posting is rebuilt from the row.
    let recorded = await this.ledger.recordUsage(event, cost, charge({ payer: event.payer, paid: BigInt(event.chargedCost) }));
    if (recorded.mismatch) recorded = await this.ledger.recordUsage(event, cost, charge(recorded.mismatch));
    if (recorded.mismatch) throw new Error(`usage ${event.requestId}: payment ${paymentId} changed its payer or amount while being billed`);
    // Also on a redelivery after a crash between the write and the enqueue: a payment marked `refunding`
    // always gets its refund job (its deduplication id makes this a no-op while one is queued or running).
    if (servedNothing && recorded.paymentStatus === "refunding") {
      this.logger.warn(
        { requestId: event.requestId, paymentId, errorClass: event.errorClass },
        "inference served nothing after payment; refunding on-chain",
      );
      await this.queues.enqueue("settlement", { kind: "refund", reference: paymentId, requestedAt: Date.now() });
    }
  }
}
