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
