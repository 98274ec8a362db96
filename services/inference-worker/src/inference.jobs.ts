import { Inject, Injectable } from "@nestjs/common";
import { JobHandler, JobQueues, type JobPayload } from "@worldrouter/runtime";

/** Queue edge: hands each `inference` job to the use-case. */
@Injectable()
export class InferenceJobs {
  constructor(@Inject(JobQueues) private readonly queues: JobQueues) {}

  @JobHandler("inference")
  async runInference(job: JobPayload<"inference">) {
    // Placeholder until the provider adapters land: report zero usage so the flow is observable end to end.
    await this.queues.enqueue("usage", {
      requestId: job.requestId, model: job.model, provider: "none", intent: job.intent, payer: job.payer,
      chargePaymentId: job.chargePaymentId, channelId: job.channelId, status: "failed",
      promptTokens: job.promptTokens, completionTokens: 0, cachedTokens: 0, cacheWriteTokens: 0,
      estimatedCost: job.estimatedCost, finishReason: null, errorClass: "not_implemented", ttftMs: null,
      latencyMs: 0, completedAt: Date.now(),
    });
  }
}
