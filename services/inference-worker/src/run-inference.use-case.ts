import { Inject, Injectable } from "@nestjs/common";
import type { InferenceJob, InferenceStartedEvent, StreamMessage, UsageEvent } from "@worldrouter/contracts";
import { counter, histogram, type Logger } from "@worldrouter/observability";
import { countCompletionTokens, type Model } from "@worldrouter/pricing";
import { LOGGER, METRICS, MoneyEventPublisher, type DropReason } from "@worldrouter/runtime";
import type { Registry } from "prom-client";
import { InferenceCancellations } from "./inference-cancellations.js";
import {
  asInferenceError,
  InferenceCancelledError,
  InternalInferenceError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
  type InferenceError,
} from "./providers/errors.js";
import type { TokenUsage } from "./providers/provider.js";
import { ProviderRouter, type Route } from "./providers/provider-router.js";
import { ReplyStreams, type ReplyWriter } from "./reply-streams.js";

/**
 * Runs one inference job: calls the model's provider, writes its output to the job's reply stream (chunks then
 * `end`, or one completion; or `error`), and reports exactly one usage event whatever happened — with the
 * tokens actually served when the stream failed or the client went away. Before the first output is relayed,
 * its `inference.started` money event is in Redis (one awaited XADD): a payment whose inference delivered
 * anything is never taken for an orphan and refunded.
 */
@Injectable()
export class RunInference {
  private readonly outcomes;
  private readonly ttft;

  constructor(
    @Inject(ProviderRouter) private readonly router: ProviderRouter,
    @Inject(ReplyStreams) private readonly replies: ReplyStreams,
    @Inject(InferenceCancellations) private readonly cancellations: InferenceCancellations,
    @Inject(MoneyEventPublisher) private readonly moneyEvents: MoneyEventPublisher,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) metrics: Registry,
  ) {
    this.outcomes = counter(metrics, "wr_inference_total", "Inference requests by provider and outcome", ["provider", "status", "error"]);
    this.ttft = histogram(metrics, "wr_inference_ttft_ms", "Time to first token, from enqueue", ["provider"]);
  }

  /** In-flight runs drain on shutdown: the job consumers close (and wait) before connections do. */
  run(job: InferenceJob): Promise<UsageEvent> {
    return this.serveAndReport(job);
  }

  private async serveAndReport(job: InferenceJob): Promise<UsageEvent> {
    const served = new ServedTokens(job);
    const reply = this.replies.open(job.replyTo, job.requestId);
    const signal = this.cancellations.track(job.requestId);
    let failure: InferenceError | undefined;
    let usage: UsageEvent | undefined;
    try {
      usage = await this.serve(job, signal, reply, served);
      // A `completion` is final by itself; only a stream needs its end marked, once its usage is on record: a worker
      // that dies after delivering everything has billed it (its gateway's report of a lost worker comes second).
      if (job.stream) {
        usage = await this.report(served);
        await reply.write({ type: "end" });
      }
    } catch (err) {
      failure = asInferenceError(err);
      if (failure instanceof InternalInferenceError) this.logger.error({ requestId: job.requestId, err }, "inference failed");
      else if (failure.status >= 500) this.logger.warn({ requestId: job.requestId, err: failure.message }, "upstream failed");
      await this.writeSafely(reply, {
        type: "error",
        status: failure.status,
        code: failure.code,
        message: failure.clientMessage,
        streamed: served.streamed,
      });
    } finally {
      this.cancellations.untrack(job.requestId);
    }
    await reply
      .flush()
      .catch((err: Error) => this.logger.warn({ requestId: job.requestId, err: err.message }, "reply stream write failed"));

    return usage ?? (await this.report(served, failure));
  }

  /**
   * A job that must not run (`InferenceAdmissions`): its one usage event is a cancelled one with no tokens, so
   * settlement refunds its payment (once: a payment already swept stays as it is) and bills nothing. Its gateway, if it
   * still waits (a swept payment), is told why.
   */
  async drop(job: InferenceJob, reason: DropReason): Promise<UsageEvent> {
    const usage = new ServedTokens(job).usageEvent(new InferenceCancelledError(), DROPPED_ERROR_CLASS[reason]);
    await this.moneyEvents.publish(usage);
    this.outcomes.inc({ provider: usage.provider, status: usage.status, error: usage.errorClass ?? "" });
    this.logger.warn({ requestId: job.requestId, reason }, "inference job dropped before it started; its payment is refunded");
    const reply = this.replies.open(job.replyTo, job.requestId);
    await this.writeSafely(reply, { type: "error", ...DROPPED_REPLY[reason], streamed: false });
    await reply
      .flush()
      .catch((err: Error) => this.logger.warn({ requestId: job.requestId, err: err.message }, "reply stream write failed"));
    return usage;
  }

  /** The request's one usage event, published (awaited). */
  private async report(served: ServedTokens, failure?: InferenceError): Promise<UsageEvent> {
    const usage = served.usageEvent(failure);
    await this.moneyEvents.publish(usage);
    this.outcomes.inc({ provider: usage.provider, status: usage.status, error: usage.errorClass ?? "" });
    if (usage.ttftMs !== null) this.ttft.observe({ provider: usage.provider }, usage.ttftMs);
    return usage;
  }

  /** Serves the job; a non-streamed one returns its usage, published before the completion leaves. */
  private async serve(job: InferenceJob, signal: AbortSignal, reply: ReplyWriter, served: ServedTokens): Promise<UsageEvent | undefined> {
    const routes = this.router.routes(job.model);
    for (let i = 0; ; i++) {
      const route = routes[i]!;
      served.use(route);
      const call = { requestId: job.requestId, model: route.model, body: job.body, signal };
      try {
        if (!job.stream) {
          const completion = await route.adapter.complete(call);
          served.add(completion.text, completion.usage, completion.finishReason ?? undefined);
          // The whole answer is known: its usage (which implies the start) is on record before it leaves, in the one
          // awaited event the start alone would have cost.
          served.firstOutput();
          const usage = await this.report(served);
          await reply.write({ type: "completion", data: completion.data });
          return usage;
        }
        for await (const chunk of route.adapter.stream(call)) {
          served.add(chunk.text, chunk.usage, chunk.finishReason);
          if (chunk.data === undefined) continue;
          if (!served.streamed) await this.recordStart(served);
          const full = reply.write({ type: "chunk", data: chunk.data });
          if (full) await full;
        }
        return undefined;
      } catch (err) {
        const fallback = routes[i + 1];
        if (!fallback || served.streamed || !(err instanceof UpstreamUnavailableError || err instanceof UpstreamTimeoutError)) throw err;
        this.logger.warn(
          { requestId: job.requestId, model: route.model.id, fallback: fallback.model.id, err: err.message },
          "provider unavailable; trying fallback model",
        );
      }
    }
  }

  /** Before the first output leaves: the start of the inference is durable once Redis has its event. */
  private async recordStart(served: ServedTokens): Promise<void> {
    await this.moneyEvents.publish(served.startedEvent());
    served.firstOutput();
  }

  private async writeSafely(reply: ReplyWriter, message: StreamMessage): Promise<void> {
    try {
      await reply.write(message);
    } catch {
      // The reply stream already failed; flush() reports it.
    }
  }
}

/** The usage `errorClass` of a dropped job, by why it was dropped. */
const DROPPED_ERROR_CLASS: Record<DropReason, string> = {
  expired: "InferenceDeadlinePassed",
  "client-gone": "InferenceClientGone",
  swept: "InferencePaymentSwept",
};

/** What a gateway still waiting for a dropped job is told (only a swept payment's can still be waiting). */
const DROPPED_REPLY: Record<DropReason, { status: number; code: string; message: string }> = {
  expired: {
    status: 504,
    code: "inference_reply_timeout",
    message: "no inference worker started this request before its deadline; its payment is refunded",
  },
  "client-gone": {
    status: 499,
    code: "request_cancelled",
    message: "the client left before the inference started; its payment is refunded",
  },
  swept: {
    status: 503,
    code: "payment_refunded",
    message: "this request's payment was refunded as orphaned before an inference worker started it; nothing was served",
  },
};

/** What one request consumed, from the provider's usage where it reported it, else from our tokenizer. */
class ServedTokens {
  private route: Route | undefined;
  private reported: Partial<TokenUsage> = {};
  private text = "";
  private finishReason: string | null = null;
  private firstOutputAt: number | null = null;
  /** The provider accepted the request: from here on its prompt is billed even if the request fails. */
  private accepted = false;

  constructor(private readonly job: InferenceJob) {}

  get streamed(): boolean {
    return this.firstOutputAt !== null;
  }

  use(route: Route): void {
    this.route = route;
  }

  add(text: string, usage: Partial<TokenUsage> | undefined, finishReason: string | undefined): void {
    this.accepted = true;
    if (text) this.text += text;
    if (usage) Object.assign(this.reported, usage);
    if (finishReason) this.finishReason = finishReason;
  }

  firstOutput(): void {
    this.firstOutputAt ??= Date.now();
  }

  startedEvent(): InferenceStartedEvent {
    const job = this.job;
    return {
      kind: "inference.started",
      requestId: job.requestId,
      model: this.route?.model.id ?? job.model,
      provider: this.route?.adapter.name ?? "none",
      intent: job.intent,
      payer: job.payer,
      ...(job.chargePaymentId ? { chargePaymentId: job.chargePaymentId } : {}),
      ...(job.channelId ? { channelId: job.channelId } : {}),
      estimatedCost: job.estimatedCost,
      chargedCost: job.chargedCost,
      startedAt: Date.now(),
    };
  }

  usageEvent(failure: InferenceError | undefined, errorClass = failure?.name ?? null): UsageEvent {
    const job = this.job;
    const now = Date.now();
    const model: Model | undefined = this.route?.model;
    const status = failure === undefined ? "succeeded" : failure instanceof InferenceCancelledError ? "cancelled" : "failed";
    const tokens =
      this.accepted && model ? this.tokens(model) : { promptTokens: 0, completionTokens: 0, cachedTokens: 0, cacheWriteTokens: 0 };
    return {
      kind: "inference.usage",
      requestId: job.requestId,
      model: model?.id ?? job.model,
      provider: this.route?.adapter.name ?? "none",
      intent: job.intent,
      payer: job.payer,
      ...(job.chargePaymentId ? { chargePaymentId: job.chargePaymentId } : {}),
      ...(job.channelId ? { channelId: job.channelId } : {}),
      status,
      ...tokens,
      estimatedCost: job.estimatedCost,
      chargedCost: job.chargedCost,
      finishReason: this.finishReason,
      errorClass,
      ttftMs: this.firstOutputAt === null ? null : Math.max(0, this.firstOutputAt - job.enqueuedAt),
      latencyMs: Math.max(0, now - job.enqueuedAt),
      completedAt: now,
    };
  }

  /** Provider numbers when it sent them; else the gateway's prompt count and our count of the streamed text. */
  private tokens(model: Model): TokenUsage {
    const reported = this.reported;
    return {
      promptTokens: reported.promptTokens ?? this.job.promptTokens,
      completionTokens: reported.completionTokens ?? countCompletionTokens(model, this.text),
      cachedTokens: reported.cachedTokens ?? 0,
      cacheWriteTokens: reported.cacheWriteTokens ?? 0,
    };
  }
}
