/**
 * gateway → inference-worker dispatch: a Redis Stream read by the workers as one consumer group.
 *
 * Not a BullMQ queue, because this hop is on every paid request's critical path: one XADD by the gateway and
 * one XREADGROUP by the worker (which returns the job itself, several at once under load) instead of BullMQ's
 * add script, marker wake-up and move-to-active script (measured: ~2-3 ms of pick-up latency at c=1, and jobs
 * taken one at a time). An inference job is never retried anyway: a rerun would stream duplicate chunks and
 * bill twice. An entry taken by a worker that died stays pending until the reaper drops it and tells the waiting
 * gateway (`INFERENCE_WORKER_LOST`), which bills what it delivered or, when it delivered nothing, has it refunded.
 *
 * Entry fields: `job` = JSON of an `InferenceJob` (validated by the consumer).
 */
export const inferenceJobStreamKey = (namespace: string) => `${namespace}:inference:jobs`;
/** The one consumer group every inference worker reads with. */
export const INFERENCE_CONSUMER_GROUP = "inference-workers";
/**
 * The live workers: a sorted set of consumer name → last heartbeat (epoch ms). A worker not seen for
 * INFERENCE_WORKER_TTL_MS is dead: its pending entries are abandoned, and a gateway with no live worker is not
 * ready (it would take payments nothing can serve).
 */
export const inferenceWorkersKey = (namespace: string) => `${namespace}:inference:workers`;
export const INFERENCE_WORKER_TTL_MS = 15_000;
/**
 * Error code of the reply the reaper sends for a job whose worker died with it: the gateway ends the request with it
 * and reports what it had delivered as the request's usage.
 */
export const INFERENCE_WORKER_LOST = "inference_worker_lost";

/**
 * A request's admission: ONE verdict per request id, set once (`SET NX`) by whoever decides its job's fate first.
 *   admitted     a worker starts the job (from here it is served and billed what it delivers)
 *   expired      the job's deadline passed before a worker started it (its gateway answered 504)
 *   client-gone  the client left, or its gateway gave up on it, before a worker started it
 *   swept        settlement's orphan sweep refunds the payment: the job must never run
 * A worker that is not first drops the job and reports a cancelled usage with no tokens: its payment is refunded
 * once and never billed. Kept for the orphan-sweep window (ORPHANED_PAYMENT_MINUTES), beyond any job's deadline.
 */
export const inferenceAdmissionKey = (namespace: string, requestId: string) => `${namespace}:inference:admission:${requestId}`;
export const ADMISSION_VERDICTS = ["admitted", "expired", "client-gone", "swept"] as const;
export type AdmissionVerdict = (typeof ADMISSION_VERDICTS)[number];
