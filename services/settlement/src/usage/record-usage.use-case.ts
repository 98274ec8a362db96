import { Inject, Injectable } from "@nestjs/common";
import type { UsageEvent } from "@worldrouter/contracts";
import { Prisma, PrismaClient } from "@worldrouter/db";

/** Records one request's usage: the `InferenceRequest` row, exactly once per request id. */
@Injectable()
export class RecordUsageUseCase {
  constructor(@Inject(PrismaClient) private readonly db: PrismaClient) {}

  async record(event: UsageEvent): Promise<void> {
    await this.db.inferenceRequest.upsert({
      where: { id: event.requestId },
      update: {},
      create: {
        id: event.requestId, intent: event.intent, model: event.model, provider: event.provider, payer: event.payer,
        chargePaymentId: event.chargePaymentId ?? null, channelId: event.channelId ?? null, status: event.status,
        promptTokens: event.promptTokens, completionTokens: event.completionTokens, cachedTokens: event.cachedTokens,
        estimatedCost: new Prisma.Decimal(event.estimatedCost), finishReason: event.finishReason, errorClass: event.errorClass,
        ttftMs: event.ttftMs, latencyMs: event.latencyMs, completedAt: new Date(event.completedAt),
      },
    });
  }
}
