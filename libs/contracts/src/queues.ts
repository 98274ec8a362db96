import type { z } from "zod";
import { ChargeRecordJob, SettlementJob } from "./jobs.js";

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
  settlement: {
    schema: SettlementJob,
    options: { attempts: 10, backoff: { type: "exponential", delay: 1000 }, removeOnComplete: { age: 24 * 3600 }, removeOnFail: false },
  },
} as const satisfies Record<string, { schema: z.ZodType; options: object }>;

export type QueueName = keyof typeof QUEUES;
export const QUEUE_NAMES = Object.keys(QUEUES) as QueueName[];
export type JobOf<Q extends QueueName> = z.infer<(typeof QUEUES)[Q]["schema"]>;

/** Job ids make enqueueing idempotent: BullMQ ignores a second add with the same id. */
export const jobId = {
  "charge-records": (job: JobOf<"charge-records">) => `charge-record-${job.txHash}`,
  settlement: (job: JobOf<"settlement">) => `settle-${job.kind}-${job.reference}`,
} satisfies { [Q in QueueName]: (job: JobOf<Q>) => string };

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
