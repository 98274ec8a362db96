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
import {
  CONFIG,
  InferenceAdmissions,
  LOGGER,
  MoneyEventPublisher,
  processInstanceId,
  redisOptions,
  StreamReader,
  type StreamEntry,
} from "@worldrouter/runtime";
import { Redis } from "ioredis";
import { MODEL_REGISTRY } from "../pricing/model-registry.provider.js";

export type InferenceRequest = Omit<InferenceJob, "replyTo" | "enqueuedAt" | "deadline">;

/** Error code of the reply a request gets when no worker started its job before the deadline (→ 504, refunded). */
export const INFERENCE_REPLY_TIMEOUT = "inference_reply_timeout";

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
  /** No message for this long from a started job → the worker is presumed gone: the request ends with a 504. */
  private readonly idleTimeoutMs: number;
  /** How long a job may wait for a worker to start it (its `deadline`); then the request ends with a 504. */
  private readonly replyTimeoutMs: number;
  private readonly admissions: InferenceAdmissions;

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
    this.replyTimeoutMs = config.inference.replyTimeoutMs;
    this.commands = new Redis({ ...redisOptions(config.redis), lazyConnect: true });
    this.admissions = new InferenceAdmissions(this.commands, config.redis.namespace, config);
    const onError = (err: Error) => this.logger.warn({ err: err.message }, "reply stream redis error");
    this.commands.on("error", onError);
    // This instance's own stream, read from its start: every entry on it is for a request of this process.
    this.reader = new StreamReader({
      redis: config.redis,
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

  /**
   * After the HTTP server drained (GATEWAY_DRAIN_MS): requests still waiting end with a 503. A job no worker started
   * yet is given up (`client-gone`: it never runs, its payment is refunded); a running one is cancelled and reports
   * what it delivered.
   */
  async onApplicationShutdown() {
    await this.reader.stop();
    for (const [requestId, request] of this.pending) {
      if (!request.started) await this.giveUp(requestId, "client-gone");
      this.cancel(requestId);
      request.push({
        type: "error",
        status: 503,
        code: "gateway_shutting_down",
        message: "the gateway is shutting down",
        streamed: request.streamed,
      });
    }
    await this.commands.del(this.streamKey).catch(() => undefined);
    await this.commands.quit();
  }

  /**
   * Starts an inference and yields its messages up to and including `end`, `error` or a (final) `completion`. When `signal` aborts (the
   * client went away) or the caller stops iterating early, the worker is told to cancel and the iteration ends; a job
   * no worker started yet is given up for good (`client-gone`), so it never runs and its payment is refunded.
   * No worker starting the job by its deadline (INFERENCE_REPLY_TIMEOUT_MS) ends it with a 504 `INFERENCE_REPLY_TIMEOUT`
   * error: the job is given up (`expired`) the same way.
   */
  async *run(request: InferenceRequest, signal: AbortSignal): AsyncGenerator<StreamMessage> {
    if (signal.aborted) return;
    const enqueuedAt = Date.now();
    const job: InferenceJob = { ...request, replyTo: this.streamKey, enqueuedAt, deadline: enqueuedAt + this.replyTimeoutMs };
    const pending: PendingRequest = new PendingRequest({
      replyTimeoutMs: this.replyTimeoutMs,
      idleTimeoutMs: this.idleTimeoutMs,
      onDeadline: () => void this.onDeadline(request.requestId, pending),
      onIdle: () => this.cancel(request.requestId),
    });
    this.pending.set(request.requestId, pending);
    const onAbort = () => pending.wake();
    signal.addEventListener("abort", onAbort, { once: true });
    let finished = false;
    try {
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
        if (!pending.started) await this.giveUp(request.requestId, "client-gone");
        this.cancel(request.requestId);
      }
    }
  }

  /**
   * No message by the job's deadline: unless a worker has admitted it (it runs; from now the idle timeout applies),
   * the job is given up and the request ends with a 504. If Redis cannot be asked, the 504 stands too: a worker
   * drops a job past its deadline by its own clock.
   */
  private async onDeadline(requestId: string, pending: PendingRequest): Promise<void> {
    const verdict = await this.admissions.decide(requestId, "expired").then(
      (decision) => decision.verdict,
      (err: Error) => {
        this.logger.warn({ requestId, err: err.message }, "admission verdict not recorded at the deadline; the worker's clock enforces it");
        return "expired" as const;
      },
    );
    if (pending.started) return;
    if (verdict === "admitted") {
      pending.running();
      return;
    }
    pending.push(
      verdict === "swept"
        ? {
            type: "error",
            status: 503,
            code: "payment_refunded",
            message: "the payment was refunded as orphaned; nothing was served",
            streamed: false,
          }
        : {
            type: "error",
            status: 504,
            code: INFERENCE_REPLY_TIMEOUT,
            message: `no inference worker started this request within ${this.replyTimeoutMs} ms`,
            streamed: false,
          },
    );
  }

  /** Records that this request's job must never start (unless a worker started it already: then it is cancelled). */
  private async giveUp(requestId: string, verdict: "client-gone"): Promise<void> {
    await this.admissions
      .decide(requestId, verdict)
      .catch((err: Error) => this.logger.warn({ requestId, err: err.message }, "could not give up a queued inference job"));
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

/**
 * One request's messages between the reader loop and its consumer, and its clock: until its job starts (the first
 * message, or a worker's `admitted` verdict seen at the deadline) the reply deadline; from then the idle timeout.
 */
class PendingRequest {
  private readonly queue: StreamMessage[] = [];
  private head = 0;
  private waiter: (() => void) | undefined;
  private timer: NodeJS.Timeout;
  /** A worker runs the job (it sent something, or was seen admitted). */
  started = false;
  streamed = false;
  /** Chunks received (each relayed to the client as it arrives). */
  chunks = 0;

  constructor(private readonly clock: { replyTimeoutMs: number; idleTimeoutMs: number; onDeadline: () => void; onIdle: () => void }) {
    this.timer = setTimeout(clock.onDeadline, clock.replyTimeoutMs);
  }

  /** The job runs: no deadline any more, an idle timeout instead. */
  running(): void {
    if (this.started) return;
    this.started = true;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.clock.onIdle();
      this.push({
        type: "error",
        status: 504,
        code: "inference_timeout",
        message: `no answer from the inference worker for ${this.clock.idleTimeoutMs} ms; it reports and bills only what it served`,
        streamed: this.streamed,
      });
    }, this.clock.idleTimeoutMs);
  }

  push(message: StreamMessage): void {
    if (message.type === "chunk") {
      this.streamed = true;
      this.chunks++;
    }
    if (this.started) this.timer.refresh();
    else if (message.type !== "error") this.running();
    this.queue.push(message);
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
    clearTimeout(this.timer);
  }
}
