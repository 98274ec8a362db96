import {
  Inject,
  Injectable,
  Module,
  SetMetadata,
  type BeforeApplicationShutdown,
  type DynamicModule,
  type OnApplicationBootstrap,
} from "@nestjs/common";
import { DiscoveryModule, DiscoveryService, MetadataScanner } from "@nestjs/core";
import type { Config } from "@worldrouter/config";
import { bullPrefix, QUEUES, type JobOf, type QueueName } from "@worldrouter/contracts";
import { counter, histogram, type Logger } from "@worldrouter/observability";
import { UnrecoverableError, Worker, type Job } from "bullmq";
import type { Registry } from "prom-client";
import { blockingRedisOptions } from "./redis.js";
import { CONFIG, LOGGER, METRICS } from "./tokens.js";

const JOB_HANDLER = Symbol("JobHandler");

/**
 * Marks a method as the handler of one queue's jobs. The payload arrives parsed by the queue's contract
 * schema; a payload that does not parse is discarded as permanent (never retried).
 */
export const JobHandler = (queue: QueueName) => SetMetadata(JOB_HANDLER, queue);

/** Throw for failures that retrying cannot fix (bad input, unknown model): the job fails at once. */
export class PermanentJobError extends UnrecoverableError {
  override readonly name = "PermanentJobError";
}

export class MissingJobHandlerError extends Error {
  override readonly name = "MissingJobHandlerError";
}

export interface ConsumerOptions {
  consumes: readonly QueueName[];
  /** Jobs run at once per queue (default 16). */
  concurrency?: Partial<Record<QueueName, number>>;
}

const CONSUMER_OPTIONS = Symbol("ConsumerOptions");
type Handler = (job: never, raw: Job) => Promise<unknown>;

/**
 * Finds every `@JobHandler` at boot, fails the boot if a consumed queue has no handler (or two), and runs
 * one BullMQ worker per queue. On shutdown, workers stop taking jobs and wait for in-flight ones.
 */
@Injectable()
export class JobConsumers implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly workers: Worker[] = [];

  constructor(
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) private readonly metrics: Registry,
    @Inject(CONSUMER_OPTIONS) private readonly options: ConsumerOptions,
  ) {}

  onApplicationBootstrap() {
    const handlers = this.discoverHandlers();
    const missing = this.options.consumes.filter((q) => !handlers.has(q));
    if (missing.length) throw new MissingJobHandlerError(`no @JobHandler for consumed queue(s): ${missing.join(", ")}`);
    const processed = counter(this.metrics, "wr_jobs_processed_total", "Jobs handled, by queue and outcome", ["queue", "outcome"]);
    const duration = histogram(this.metrics, "wr_job_duration_ms", "Job handling time", ["queue"]);
    for (const queue of this.options.consumes) {
      const handler = handlers.get(queue)!;
      const schema = QUEUES[queue].schema;
      const worker = new Worker(
        queue,
        async (job) => {
          const parsed = schema.safeParse(job.data);
          if (!parsed.success) throw new PermanentJobError(`invalid ${queue} payload: ${parsed.error.message}`);
          const started = performance.now();
          try {
            return await handler(parsed.data as never, job);
          } finally {
            duration.observe({ queue }, performance.now() - started);
          }
        },
        {
          // BullMQ workers block (BZPOPMIN on the marker): a command timeout would cut every wait short.
          connection: blockingRedisOptions(this.config.redis, { maxRetriesPerRequest: null }),
          prefix: bullPrefix(this.config.redis.namespace),
          concurrency: this.options.concurrency?.[queue] ?? 16,
        },
      );
      worker.on("completed", () => processed.inc({ queue, outcome: "completed" }));
      worker.on("failed", (job, err) => {
        processed.inc({ queue, outcome: "failed" });
        this.logger.error({ queue, jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, "job failed");
      });
      worker.on("error", (err) => this.logger.error({ queue, err: err.message }, "worker error"));
      this.workers.push(worker);
    }
  }

  async waitUntilReady(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.waitUntilReady()));
  }

  /** Before any module closes its connections: stop taking jobs and let in-flight ones finish. */
  async beforeApplicationShutdown() {
    await Promise.all(this.workers.map((w) => w.close()));
  }

  private discoverHandlers(): Map<QueueName, Handler> {
    const found = new Map<QueueName, Handler>();
    for (const wrapper of this.discovery.getProviders()) {
      const instance = wrapper.instance as Record<string, unknown> | undefined;
      if (!instance || typeof instance !== "object") continue;
      const prototype = Object.getPrototypeOf(instance);
      for (const method of this.scanner.getAllMethodNames(prototype)) {
        const queue = Reflect.getMetadata(JOB_HANDLER, prototype[method]) as QueueName | undefined;
        if (!queue) continue;
        if (found.has(queue)) throw new MissingJobHandlerError(`two @JobHandler methods for queue ${queue}`);
        found.set(queue, (prototype[method] as Handler).bind(instance));
      }
    }
    return found;
  }
}

/** Typed job payload for handler signatures: `handle(job: JobPayload<"usage">)`. */
export type JobPayload<Q extends QueueName> = JobOf<Q>;

@Module({})
export class JobConsumersModule {
  static forRoot(options: ConsumerOptions): DynamicModule {
    return {
      module: JobConsumersModule,
      imports: [DiscoveryModule],
      providers: [{ provide: CONSUMER_OPTIONS, useValue: options }, JobConsumers],
      exports: [JobConsumers],
    };
  }
}
