/** Injection tokens of the inference worker. */
export const MODEL_REGISTRY = Symbol("ModelRegistry");
export const WORKER_OPTIONS = Symbol("InferenceWorkerOptions");

export interface InferenceWorkerOptions {
  /** Model id → models to try, in order, when its provider is unavailable before anything was streamed. */
  fallbacks?: Readonly<Record<string, readonly string[]>>;
  /** First retry delay towards a provider (default 250 ms, doubled per retry); tests shorten it. */
  retryBackoffMs?: number;
}
