import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import {
  encodeReplyEntry,
  INFERENCE_CONSUMER_GROUP,
  INFERENCE_WORKER_LOST,
  INFERENCE_WORKER_TTL_MS,
  InferenceJob,
  inferenceJobStreamKey,
  inferenceWorkersKey,
} from "@worldrouter/contracts";
import { counter, histogram, type Logger } from "@worldrouter/observability";
import {
  CONFIG,
  flatRecord,
  InferenceAdmissions,
  LOGGER,
  METRICS,
  processInstanceId,
  redisOptions,
  StreamReader,
  type StreamEntry,
} from "@worldrouter/runtime";
import { Redis } from "ioredis";
import type { Counter, Histogram, Registry } from "prom-client";
import { InferenceCancellations } from "./inference-cancellations.js";
import { RunInference } from "./run-inference.use-case.js";

/** XREADGROUP BLOCK timeout (shutdown unblocks the read at once). */
const READ_BLOCK_MS = 5_000;
/** Heartbeat period (a worker silent for INFERENCE_WORKER_TTL_MS is dead). */
const HEARTBEAT_EVERY_MS = 3_000;
/** How often each worker looks for entries taken by dead workers: a client waits about TTL + this at most. */
const REAP_EVERY_MS = 5_000;

/**
 * Takes inference jobs from the dispatch stream (`@worldrouter/contracts` inference-jobs) as one consumer of the
 * workers' group, runs up to INFERENCE_CONCURRENCY at once, and acknowledges + deletes each entry when its run
 * ends. A run is never retried (a rerun would stream and bill twice): failures are reported to the client and in
 * usage by `RunInference`. Entries left pending by a worker that died (no heartbeat in the workers set) are
 * dropped by the reaper (logged, counted), which tells each one's gateway (`INFERENCE_WORKER_LOST`): the gateway
 * ends the request and reports the usage it delivered (nothing delivered: the payment is refunded).
 *
 * Admission: a job runs only if this worker records its `admitted` verdict first (`InferenceAdmissions`); a job past
 * its deadline, whose client left before it started, or whose payment the orphan sweep refunds is dropped with a
 * cancelled, token-less usage (refunded once, never billed).
 *
 * Drain, don't drop: on shutdown the worker stops reading, keeps heart-beating (so no other worker reaps its jobs)
 * while its in-flight inferences finish, for up to WORKER_DRAIN_MS; those still running then are cancelled and
 * report what they delivered.
 */
@Injectable()
export class InferenceJobConsumer implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  /** This process's consumer name in the group. */
  readonly consumer = processInstanceId();
  private readonly streamKey: string;
  private readonly workersKey: string;
  private readonly concurrency: number;
  private readonly reader: StreamReader;
  private readonly commands: Redis;
  private readonly running = new Set<Promise<void>>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reapTimer: NodeJS.Timeout | undefined;
  private readonly drainMs: number;
  private readonly admissions: InferenceAdmissions;
  private readonly processed: Counter<"queue" | "outcome">;
  private readonly duration: Histogram<"queue">;
  private readonly abandoned: Counter;

  constructor(
    @Inject(CONFIG) config: Config,
    @Inject(RunInference) private readonly runInference: RunInference,
    @Inject(InferenceCancellations) private readonly cancellations: InferenceCancellations,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) metrics: Registry,
  ) {
    this.streamKey = inferenceJobStreamKey(config.redis.namespace);
    this.workersKey = inferenceWorkersKey(config.redis.namespace);
    this.concurrency = config.inference.concurrency;
    this.drainMs = config.drain.inferenceWorkerMs;
    this.commands = new Redis({ ...redisOptions(config.redis), lazyConnect: true });
    this.admissions = new InferenceAdmissions(this.commands, config.redis.namespace, config);
    const onError = (err: Error) => this.logger.warn({ err: err.message }, "inference dispatch redis error");
    this.commands.on("error", onError);
    // From "0": jobs dispatched before any worker existed are taken too (acknowledged entries are deleted).
    this.reader = new StreamReader({
      redis: config.redis,
      commands: this.commands,
      stream: this.streamKey,
      group: { name: INFERENCE_CONSUMER_GROUP, consumer: this.consumer, startId: "0" },
      capacity: () => this.concurrency - this.running.size,
      blockMs: READ_BLOCK_MS,
      onEntries: (entries) => {
        for (const entry of entries) this.start(entry);
      },
      onError,
    });
    // Same series as the BullMQ consumers, so dashboards see one `inference` queue.
    this.processed = counter(metrics, "wr_jobs_processed_total", "Jobs handled, by queue and outcome", ["queue", "outcome"]);
    this.duration = histogram(metrics, "wr_job_duration_ms", "Job handling time", ["queue"]);
    this.abandoned = counter(
      metrics,
      "wr_inference_abandoned_total",
      "Inference jobs dropped because the worker that took them died (their gateways are told, and bill what they delivered)",
    );
  }

  async onApplicationBootstrap() {
    await this.commands.connect();
    await this.reader.start();
    await this.heartbeat();
    this.heartbeatTimer = setInterval(
      () => void this.heartbeat().catch((err: Error) => this.logger.warn({ err: err.message }, "inference worker heartbeat failed")),
      HEARTBEAT_EVERY_MS,
    );
    this.reapTimer = setInterval(
      () => void this.reapAbandoned().catch((err: Error) => this.logger.warn({ err: err.message }, "abandoned inference reaping failed")),
      REAP_EVERY_MS,
    );
    this.heartbeatTimer.unref();
    this.reapTimer.unref();
  }

  /**
   * Drain, before other modules close their connections: stop taking jobs, let in-flight runs finish for up to
   * WORKER_DRAIN_MS while still heart-beating (a silent worker's jobs are reaped by the others and billed by their
   * gateways as lost), then cancel what still runs (each reports what it delivered) and wait for those reports.
   */
  async beforeApplicationShutdown() {
    clearInterval(this.reapTimer);
    await this.reader.stop();
    if (this.running.size > 0) {
      this.logger.info({ inFlight: this.running.size, drainMs: this.drainMs }, "draining in-flight inferences");
      let limit: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        Promise.all(this.running).then(() => true),
        new Promise<false>((resolve) => (limit = setTimeout(() => resolve(false), this.drainMs))),
      ]);
      clearTimeout(limit);
      if (!drained) {
        this.logger.warn({ inFlight: this.running.size }, "drain limit reached; cancelling the inferences still running");
        this.cancellations.cancelAll();
        await Promise.all(this.running);
      }
    }
    clearInterval(this.heartbeatTimer);
  }

  async onApplicationShutdown() {
    await this.commands.zrem(this.workersKey, this.consumer).catch(() => undefined);
    await this.commands.quit();
  }

  /** Jobs running here now. */
  get inFlight(): number {
    return this.running.size;
  }

  private start({ id, fields }: StreamEntry): void {
    const run: Promise<void> = this.handle(id, fields).finally(() => {
      this.running.delete(run);
      this.reader.wake();
    });
    this.running.add(run);
  }

  private async handle(id: string, fields: string[]): Promise<void> {
    const started = performance.now();
    let outcome = "completed";
    try {
      const job = parseEntry(fields);
      if (!job.ok) {
        outcome = "failed";
        this.logger.error({ entryId: id, err: job.error }, "invalid inference job dropped");
        return;
      }
      const admission = await this.admissions.admit(job.job);
      if (admission === "run") await this.runInference.run(job.job);
      else if (admission === "duplicate") {
        outcome = "duplicate";
        this.logger.warn({ entryId: id, requestId: job.job.requestId }, "inference job already admitted elsewhere; skipped");
      } else {
        outcome = "dropped";
        await this.runInference.drop(job.job, admission);
      }
    } catch (err) {
      outcome = "failed";
      this.logger.error({ entryId: id, err }, "inference job failed");
    } finally {
      this.duration.observe({ queue: "inference" }, performance.now() - started);
      this.processed.inc({ queue: "inference", outcome });
      await this.acknowledge([id]).catch((err: Error) =>
        this.logger.warn({ entryId: id, err: err.message }, "inference job acknowledgement failed (the reaper drops it later)"),
      );
    }
  }

  private async acknowledge(ids: string[]): Promise<void> {
    await this.commands
      .pipeline()
      .xack(this.streamKey, INFERENCE_CONSUMER_GROUP, ...ids)
      .xdel(this.streamKey, ...ids)
      .exec();
  }

  private async heartbeat(): Promise<void> {
    await this.commands.zadd(this.workersKey, Date.now(), this.consumer);
  }

  /**
   * Drops entries pending on consumers that stopped heart-beating (a crashed worker): they are never rerun.
   * Their consumers are removed from the group once they hold nothing. Safe to run from every worker at once.
   */
  async reapAbandoned(): Promise<number> {
    const aliveSince = Date.now() - INFERENCE_WORKER_TTL_MS;
    const [consumers, alive] = await Promise.all([
      this.commands.xinfo("CONSUMERS", this.streamKey, INFERENCE_CONSUMER_GROUP) as Promise<unknown[][]>,
      this.commands.zrangebyscore(this.workersKey, aliveSince, "+inf"),
    ]);
    const live = new Set([...alive, this.consumer]);
    let dropped = 0;
    for (const info of consumers) {
      const name = String(flatRecord(info).name);
      if (live.has(name)) continue;
      for (;;) {
        const pending = (await this.commands.xpending(this.streamKey, INFERENCE_CONSUMER_GROUP, "-", "+", 100, name)) as [
          string,
          string,
          number,
          number,
        ][];
        if (pending.length === 0) break;
        const ids = pending.map(([entryId]) => entryId);
        await this.tellGateways(ids);
        await this.acknowledge(ids);
        dropped += ids.length;
        this.abandoned.inc(ids.length);
        this.logger.warn(
          { consumer: name, entryIds: ids },
          "dropped inference jobs of a dead worker (never rerun; their gateways were told)",
        );
      }
      await this.commands.xgroup("DELCONSUMER", this.streamKey, INFERENCE_CONSUMER_GROUP, name);
    }
    await this.commands.zremrangebyscore(this.workersKey, "-inf", `(${aliveSince}`);
    return dropped;
  }

  /** Ends each dropped job's request on its gateway's reply stream (a gateway that is gone too reads nothing). */
  private async tellGateways(entryIds: string[]): Promise<void> {
    const pipeline = this.commands.pipeline();
    for (const id of entryIds) pipeline.xrange(this.streamKey, id, id);
    const found = (await pipeline.exec()) ?? [];
    const replies = this.commands.pipeline();
    for (const [, entries] of found) {
      const [entry] = (entries as [string, string[]][] | null) ?? [];
      const parsed = entry ? parseEntry(entry[1]) : undefined;
      if (!parsed?.ok) continue;
      const { requestId, replyTo } = parsed.job;
      // NOMKSTREAM: a gateway that is gone too has no stream left, and none is made for it.
      replies.xadd(
        replyTo,
        "NOMKSTREAM",
        "*",
        "requestId",
        requestId,
        ...encodeReplyEntry({
          type: "error",
          status: 502,
          code: INFERENCE_WORKER_LOST,
          message: "the inference worker running this request stopped; what was delivered is billed, nothing else",
          streamed: false,
        }),
      );
    }
    if (replies.length) await replies.exec();
  }
}

function parseEntry(fields: string[]): { ok: true; job: InferenceJob } | { ok: false; error: string } {
  const raw = fields[0] === "job" ? fields[1] : undefined;
  if (raw === undefined) return { ok: false, error: "entry has no `job` field" };
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch (err) {
    return { ok: false, error: `job is not JSON: ${(err as Error).message}` };
  }
  const parsed = InferenceJob.safeParse(data);
  return parsed.success ? { ok: true, job: parsed.data } : { ok: false, error: parsed.error.message };
}
