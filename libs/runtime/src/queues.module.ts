import { BullModule, getQueueToken } from "@nestjs/bullmq";
import { Inject, Injectable, Module, type DynamicModule } from "@nestjs/common";
import { ModuleRef } from "@nestjs/core";
import type { Config } from "@worldrouter/config";
import { bullPrefix, deduplicationId, jobId, QUEUES, type JobOf, type QueueName } from "@worldrouter/contracts";
import type { Queue } from "bullmq";
import { redisOptions } from "./redis.js";

/** Enqueues typed, schema-checked jobs; the job id or deduplication id from `@worldrouter/contracts` makes adds idempotent. */
@Injectable()
export class JobQueues {
  private readonly queues = new Map<QueueName, Queue>();
  constructor(@Inject(ModuleRef) private readonly moduleRef: ModuleRef) {}

  queue(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = this.moduleRef.get<Queue>(getQueueToken(name), { strict: false });
      this.queues.set(name, queue);
    }
    return queue;
  }

  async enqueue<Q extends QueueName>(name: Q, payload: JobOf<Q>): Promise<string> {
    const data = QUEUES[name].schema.parse(payload) as JobOf<Q>;
    if (name in jobId) {
      const id = (jobId[name as keyof typeof jobId] as (job: JobOf<Q>) => string)(data);
      await this.queue(name).add(name, data, { jobId: id });
      return id;
    }
    const id = (deduplicationId[name as keyof typeof deduplicationId] as (job: JobOf<Q>) => string)(data);
    const job = await this.queue(name).add(name, data, { deduplication: { id } });
    return job.id!;
  }
}

/** BullMQ connection (namespaced prefix) and the queues a service produces to. */
@Module({})
export class QueuesModule {
  static forRoot(config: Config, produces: readonly QueueName[]): DynamicModule {
    return {
      module: QueuesModule,
      global: true,
      imports: [
        BullModule.forRoot({
          connection: redisOptions(config.redis, { maxRetriesPerRequest: null, enableOfflineQueue: true }),
          prefix: bullPrefix(config.redis.namespace),
        }),
        ...produces.map((name) => BullModule.registerQueue({ name, defaultJobOptions: QUEUES[name].options })),
      ],
      providers: [JobQueues],
      exports: [JobQueues, BullModule],
    };
  }
}
