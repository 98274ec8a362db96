import type { z } from "zod";
import { ChargeOutcomesJob, ChargeRecordJob, SettlementJob } from "./jobs.js";

/**
 * The BullMQ queues, their payload schemas and options: the one place services take queue names from. BullMQ
 * carries delayed, retried and scheduled work; failed jobs are kept for inspection. (Inference jobs and money
 * events do not go through BullMQ: see `inference-jobs.ts` and `money-events.ts`.)
 */
export const QUEUES = {
  // Money already moved on-chain: retried for about 12 days (exponential from 1 s) until Postgres takes the record.
  "charge-records": {
    schema: ChargeRecordJob,
    options: { attempts: 20, backoff: { type: "exponential", delay: 1000 }, removeOnComplete: { age: 24 * 3600 }, removeOnFail: false },
  },
  // Scheduler ticks (every few seconds, one job per tick across replicas): a failed tick is replaced by the next one.
  "charge-outcomes": {
    schema: ChargeOutcomesJob,
    options: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
  },
  // Refunds must finish: a chain or RPC outage is waited out for about 3 days (exponential from 2 s: 2^17 × 2 s in
  // total); after the last attempt the refund is marked `failed` for an operator (wr_refunds_stuck).
  settlement: {
    schema: SettlementJob,
    options: { attempts: 18, backoff: { type: "exponential", delay: 2000 }, removeOnComplete: { age: 24 * 3600 }, removeOnFail: false },
  },
} as const satisfies Record<string, { schema: z.ZodType; options: object }>;

export type QueueName = keyof typeof QUEUES;
export const QUEUE_NAMES = Object.keys(QUEUES) as QueueName[];
export type JobOf<Q extends QueueName> = z.infer<(typeof QUEUES)[Q]["schema"]>;

/**
 * How a second add of the same job becomes a no-op. `jobId`: BullMQ ignores a second add with the same id for as long
 * as the first job is kept (money events: applied once, ever). `deduplicationId`: ignored only while the first job
 * waits or runs, so a refund that failed for good can be queued again (a fixed job id kept by `removeOnFail: false`
 * would swallow every later add). Every queue has exactly one of the two.
 */
export const jobId = {
  "charge-records": (job: JobOf<"charge-records">) => `charge-record-${job.txHash}`,
} satisfies { [Q in Exclude<QueueName, "settlement" | "charge-outcomes">]: (job: JobOf<Q>) => string };

export const deduplicationId = {
  "charge-outcomes": () => "charge-outcomes",
  settlement: (job: JobOf<"settlement">) => `settle-${job.kind}-${job.reference}`,
} satisfies { [Q in Exclude<QueueName, keyof typeof jobId>]: (job: JobOf<Q>) => string };

/** BullMQ key prefix for a deployment namespace (REDIS_NAMESPACE). Hash-tagged for Redis Cluster. */
export const bullPrefix = (namespace: string) => `{${namespace}}:bull`;

/**
 * Redis Stream that carries chunks from inference workers to one gateway instance; entries are tagged with
 * the request id and demultiplexed in the gateway. One stream (and one blocking reader) per gateway process
 * instead of one per request keeps Redis connections constant at any number of concurrent streams.
 */
export const replyStreamKey = (namespace: string, gatewayInstanceId: string) => `${namespace}:replies:${gatewayInstanceId}`;
/** Pub/sub channel on which the gateway tells the worker that the client went away. */
export const cancelChannel = (namespace: string) => `${namespace}:inference.cancel`;
