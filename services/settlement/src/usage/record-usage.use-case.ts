import { Inject, Injectable } from "@nestjs/common";
import type { UsageEvent } from "@worldrouter/contracts";
import { claimEvent, postLedgerTransaction, Prisma, PrismaClient } from "@worldrouter/db";
import type { Logger } from "@worldrouter/observability";
import { actualCost, createModelRegistry } from "@worldrouter/pricing";
import { JobQueues, LOGGER } from "@worldrouter/runtime";
import { chargeUsage } from "../ledger/charge-postings.js";

/**
 * Records one request's usage exactly once: the `InferenceRequest` (estimated next to actual cost) and, for a
 * charge, the ledger transaction consuming the payment. A charge whose inference served nothing is not
 * billed: it is queued for an on-chain refund instead.
 */
@Injectable()
export class RecordUsageUseCase {
  private readonly models = createModelRegistry();

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(JobQueues) private readonly queues: JobQueues,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async record(event: UsageEvent): Promise<void> {
    const model = this.models.getModel(event.model);
    const cost = model
      ? actualCost({ model, promptTokens: BigInt(event.promptTokens), completionTokens: BigInt(event.completionTokens), cachedTokens: BigInt(event.cachedTokens), cacheWriteTokens: BigInt(event.cacheWriteTokens) })
      : null;
    const servedNothing = event.status !== "succeeded" && event.completionTokens === 0;
    await this.db.$transaction(async (tx) => {
      if (!(await claimEvent(tx, "settlement.usage", event.requestId))) return;
      await tx.inferenceRequest.create({
        data: {
          id: event.requestId, intent: event.intent, model: event.model, provider: event.provider, payer: event.payer,
          chargePaymentId: event.chargePaymentId ?? null, channelId: event.channelId ?? null, status: event.status,
          promptTokens: event.promptTokens, completionTokens: event.completionTokens, cachedTokens: event.cachedTokens,
          estimatedCost: new Prisma.Decimal(event.estimatedCost), actualCost: cost === null ? null : new Prisma.Decimal(cost.toString()),
          finishReason: event.finishReason, errorClass: event.errorClass, ttftMs: event.ttftMs, latencyMs: event.latencyMs,
          completedAt: new Date(event.completedAt),
        },
      });
      if (event.intent !== "charge" || !event.chargePaymentId) return;
      // Only a payment still `verified` changes state here: one already swept for refund stays refunded.
      const settled = await tx.chargePayment.updateManyAndReturn({
        where: { id: event.chargePaymentId, status: "verified" },
        data: { status: servedNothing ? "refunding" : "consumed" },
      });
      const payment = settled[0];
      if (!payment || servedNothing) return;
      const paid = BigInt(payment.amount.toFixed());
      await postLedgerTransaction(tx, chargeUsage({ requestId: event.requestId, payer: payment.payer, paid, actualCost: cost ?? paid }));
    });
    // Outside the transaction, and also on a retry after a crash: a payment marked `refunding` always gets
    // its refund job (the job id makes this idempotent).
    if (event.intent === "charge" && event.chargePaymentId && servedNothing) {
      const payment = await this.db.chargePayment.findUnique({ where: { id: event.chargePaymentId } });
      if (payment?.status === "refunding") {
        this.logger.warn({ requestId: event.requestId, paymentId: payment.id, errorClass: event.errorClass }, "inference served nothing after payment; refunding on-chain");
        await this.queues.enqueue("settlement", { kind: "refund", reference: payment.id, requestedAt: Date.now() });
      }
    }
  }
}
