import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import {
  cancelChannel,
  decodeReplyEntry,
  INFERENCE_WORKER_LOST,
  INFERENCE_WORKER_TTL_MS,
  inferenceJobStreamKey,
  inferenceWorkersKey,
  replyStreamKey,
  type InferenceJob,
  type StreamMessage,
} from "@worldrouter/contracts";
import type { Logger } from "@worldrouter/observability";
import type { ModelRegistry } from "@worldrouter/pricing";
import { CONFIG, LOGGER, MoneyEventPublisher, processInstanceId, redisOptions, StreamReader, type StreamEntry } from "@worldrouter/runtime";
import { Redis } from "ioredis";
import { MODEL_REGISTRY } from "../pricing/model-registry.provider.js";

export type InferenceRequest = Omit<InferenceJob, "replyTo" | "enqueuedAt">;

/** Entries fetched per XREAD: big batches when many streams are busy, one round trip when few are. */
const READ_BATCH = 1000;
/** XREAD BLOCK timeout (shutdown unblocks the read at once). */
const READ_BLOCK_MS = 5_000;

/**
 * The gateway's side of inference: dispatches jobs (one XADD to the inference job stream, see
 * `@worldrouter/contracts` inference-jobs) that answer on this instance's reply stream, and reads that stream with
 * ONE blocking connection, handing each entry to the request it belongs to. Redis connections stay at two
 * (reader + commands) whatever the number of concurrent requests.
 * Entries are decoded with `decodeReplyEntry` (`@worldrouter/contracts`).
 */
@Injectable()
export class InferenceRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  /** This gateway process; its reply stream is `replyStreamKey(namespace, instanceId)`. */
  readonly instanceId = processInstanceId();
  readonly streamKey: string;
  private readonly reader: StreamReader;
  private readonly commands: Redis;
  private readonly pending = new Map<string, PendingRequest>();
  private readonly cancelChannel: string;
  private readonly jobStreamKey: string;
  private readonly workersKey: string;
  /** No message for this long → the worker is presumed gone: the request ends with a 504. */
  private readonly idleTimeoutMs: number;

  constructor(
    @Inject(CONFIG) config: Config,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(MoneyEventPublisher) private readonly moneyEvents: MoneyEventPublisher,
    @Inject(MODEL_REGISTRY) private readonly models: ModelRegistry,
  ) {
    this.streamKey = replyStreamKey(config.redis.namespace, this.instanceId);
    this.cancelChannel = cancelChannel(config.redis.namespace);
    this.jobStreamKey = inferenceJobStreamKey(config.redis.namespace);
    this.workersKey = inferenceWorkersKey(config.redis.namespace);
    this.idleTimeoutMs = config.upstream.timeoutMs * (config.upstream.maxRetries + 1) + 30_000;
    this.commands = new Redis({ ...redisOptions(config.redis.url), lazyConnect: true });
    const onError = (err: Error) => this.logger.warn({ err: err.message }, "reply stream redis error");
    this.commands.on("error", onError);
    // This instance's own stream, read from its start: every entry on it is for a request of this process.
    this.reader = new StreamReader({
      redisUrl: config.redis.url,
      commands: this.commands,
      stream: this.streamKey,
      startId: "0-0",
      capacity: () => READ_BATCH,
      blockMs: READ_BLOCK_MS,
      onEntries: (entries) => this.dispatch(entries),
      onError,
    });
  }

  async onApplicationBootstrap() {
    await this.commands.connect();
    await this.reader.start();
  }

  async onApplicationShutdown() {
    await this.reader.stop();
    for (const request of this.pending.values())
      request.push({
        type: "error",
        status: 503,
        code: "gateway_shutting_down",
        message: "the gateway is shutting down",
        streamed: request.streamed,
      });
    await this.commands.del(this.streamKey).catch(() => undefined);
    await this.commands.quit();
  }

  /**
   * Starts an inference and yields its messages up to and including `end`, `error` or a (final) `completion`. When `signal` aborts (the
   * client went away) or the caller stops iterating early, the worker is told to cancel and the iteration ends.
   */
  async *run(request: InferenceRequest, signal: AbortSignal): AsyncGenerator<StreamMessage> {
    if (signal.aborted) return;
    const pending = new PendingRequest(this.idleTimeoutMs, () => this.cancel(request.requestId));
    this.pending.set(request.requestId, pending);
    const onAbort = () => pending.wake();
    signal.addEventListener("abort", onAbort, { once: true });
    let finished = false;
    try {
      const job: InferenceJob = { ...request, replyTo: this.streamKey, enqueuedAt: Date.now() };
      await this.commands.xadd(this.jobStreamKey, "*", "job", JSON.stringify(job));
      while (!signal.aborted) {
        const message = pending.shift();
        if (message === undefined) {
          await pending.next();
          continue;
        }
        // `completion` is a whole non-streamed answer: nothing follows but `end`, so nothing is left to cancel.
        if (message.type === "end" || message.type === "error" || message.type === "completion") {
          // Clean up before the last yield: callers often stop iterating once they see it.
          finished = true;
          this.release(request.requestId, pending, signal, onAbort);
          if (message.type === "error" && message.code === INFERENCE_WORKER_LOST)
            await this.reportLostInference(request, job.enqueuedAt, pending.chunks);
          yield message;
          return;
        }
        yield message;
      }
    } finally {
      if (!finished) {
        this.release(request.requestId, pending, signal, onAbort);
        this.cancel(request.requestId);
      }
    }
  }

  /**
   * The worker died with this request (its reaper said so): nobody else will report its usage. What this gateway
   * relayed is what was served: `chunks` streamed deltas are billed as that many completion tokens (one delta per
   * token is how both providers stream; the charge is a fixed price anyway), none means nothing was served and the
   * payment is refunded (settlement's served-nothing rule). The usage of the same request from a worker that was
   * only slow, not dead, would find this one applied first, or the reverse: settlement takes the first.
   */
  private async reportLostInference(request: InferenceRequest, enqueuedAt: number, chunks: number): Promise<void> {
    const now = Date.now();
    try {
      await this.moneyEvents.publish({
        kind: "inference.usage",
        requestId: request.requestId,
        model: request.model,
        provider: this.models.getModel(request.model)?.provider ?? "none",
        intent: request.intent,
        payer: request.payer,
        ...(request.chargePaymentId ? { chargePaymentId: request.chargePaymentId } : {}),
        ...(request.channelId ? { channelId: request.channelId } : {}),
        status: "failed",
        promptTokens: chunks > 0 ? request.promptTokens : 0,
        completionTokens: chunks,
        cachedTokens: 0,
        cacheWriteTokens: 0,
        estimatedCost: request.estimatedCost,
        chargedCost: request.chargedCost,
        finishReason: null,
        errorClass: "InferenceWorkerLost",
        ttftMs: null,
        latencyMs: Math.max(0, now - enqueuedAt),
        completedAt: now,
      });
      this.logger.warn({ requestId: request.requestId, chunks }, "inference worker lost mid-request; delivered output reported as usage");
    } catch (err) {
      this.logger.error({ requestId: request.requestId, err: (err as Error).message }, "usage of a lost inference could not be reported");
    }
  }

  /** Tells the workers to stop this request (whichever runs it aborts its upstream call). */
  private cancel(requestId: string): void {
    this.commands
      .publish(this.cancelChannel, requestId)
      .catch((err: Error) => this.logger.warn({ requestId, err: err.message }, "cancel publish failed"));
  }

  /** Inference workers that heart-beat recently (readiness: without one, a paid request could not be served). */
  async liveWorkers(): Promise<number> {
    return this.commands.zcount(this.workersKey, Date.now() - INFERENCE_WORKER_TTL_MS, "+inf");
  }

  /** Requests waiting for messages now. */
  get inFlight(): number {
    return this.pending.size;
  }

  private release(requestId: string, pending: PendingRequest, signal: AbortSignal, onAbort: () => void): void {
    this.pending.delete(requestId);
    pending.close();
    signal.removeEventListener("abort", onAbort);
  }

  private dispatch(entries: StreamEntry[]): void {
    for (const { fields } of entries) {
      const { requestId, messages } = decodeReplyEntry(fields);
      // Unknown ids: requests that ended here already (cancelled, timed out).
      const pending = requestId === undefined ? undefined : this.pending.get(requestId);
      if (!pending) continue;
      if (!messages) {
        this.logger.warn({ requestId }, "malformed reply stream entry");
        continue;
      }
      for (const message of messages) pending.push(message);
    }
  }
}

/** One request's messages between the reader loop and its consumer. */
class PendingRequest {
  private readonly queue: StreamMessage[] = [];
  private head = 0;
  private waiter: (() => void) | undefined;
  private readonly idle: NodeJS.Timeout;
  streamed = false;
  /** Chunks received (each relayed to the client as it arrives). */
  chunks = 0;

  constructor(idleTimeoutMs: number, onIdle: () => void) {
    this.idle = setTimeout(() => {
      onIdle();
      this.push({
        type: "error",
        status: 504,
        code: "inference_timeout",
        message: `no answer from the inference worker for ${idleTimeoutMs} ms`,
        streamed: this.streamed,
      });
    }, idleTimeoutMs);
  }

  push(message: StreamMessage): void {
    if (message.type === "chunk") {
      this.streamed = true;
      this.chunks++;
    }
    this.queue.push(message);
    this.idle.refresh();
    this.wake();
  }

  shift(): StreamMessage | undefined {
    if (this.head === this.queue.length) return undefined;
    const message = this.queue[this.head++];
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
    return message;
  }

  /** Resolves at the next push (or wake). */
  next(): Promise<void> {
    return new Promise((resolve) => (this.waiter = resolve));
  }

  wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  close(): void {
    clearTimeout(this.idle);
  }
}
