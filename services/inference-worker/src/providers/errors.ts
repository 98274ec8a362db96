/**
 * Why an inference failed, one class per cause. Each carries the OpenAI-style error the client sees
 * (`status`, `code`) and whether retrying the upstream call could help; `name` becomes the usage event's
 * `errorClass`.
 */
export abstract class InferenceError extends Error {
  abstract readonly status: number;
  abstract readonly code: string;
  /** Worth another attempt (with backoff) if nothing was streamed yet. */
  readonly retryable: boolean = false;

  constructor(
    readonly shortMessage: string,
    readonly details?: string,
    options?: { cause?: unknown },
  ) {
    super(details ? `${shortMessage}: ${details}` : shortMessage, options);
  }

  /** The message shown to the client. */
  get clientMessage(): string {
    return this.message;
  }
}

/** The gateway sent a model this worker does not know (catalogue drift between deployments). */
export class ModelNotServedError extends InferenceError {
  override readonly name = "ModelNotServedError";
  readonly status = 404;
  readonly code = "model_not_found";
  constructor(readonly modelId: string) {
    super("model not served", modelId);
  }
}

/** In production, a model whose provider is not configured: it is never served by the local provider. */
export class ModelUnavailableError extends InferenceError {
  override readonly name = "ModelUnavailableError";
  readonly status = 503;
  readonly code = "model_unavailable";
  constructor(
    readonly modelId: string,
    readonly provider: string,
  ) {
    super("model unavailable", `${modelId}: provider ${provider} is not configured`);
  }
}

/** A request we cannot express for the provider (e.g. `n > 1` for Anthropic). Permanent. */
export class UnsupportedRequestError extends InferenceError {
  override readonly name = "UnsupportedRequestError";
  readonly status = 400;
  readonly code = "unsupported_parameter";
}

/** The provider answered 4xx: its status and message go to the client unchanged. */
export class UpstreamRejectedError extends InferenceError {
  override readonly name = "UpstreamRejectedError";
  override readonly retryable: boolean;
  readonly code: string;
  constructor(
    readonly provider: string,
    readonly status: number,
    code: string | undefined,
    readonly providerMessage: string,
    /** From Retry-After / retry-after-ms, for 429. */
    readonly retryAfterMs?: number,
  ) {
    super(`${provider} rejected the request (${status})`, providerMessage);
    this.code = code ?? "upstream_error";
    this.retryable = status === 429 || status === 408 || status === 409;
  }
  override get clientMessage(): string {
    return this.providerMessage;
  }
}

/** 5xx, connection failures, unparseable answers: the provider is unavailable. Answered with 502. */
export class UpstreamUnavailableError extends InferenceError {
  override readonly name = "UpstreamUnavailableError";
  readonly status = 502;
  readonly code = "upstream_unavailable";
  override readonly retryable = true;
  readonly retryAfterMs: number | undefined;
  constructor(
    readonly provider: string,
    details: string,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(`${provider} is unavailable`, details, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** No answer (or no next chunk) within UPSTREAM_TIMEOUT_MS. Answered with 504. */
export class UpstreamTimeoutError extends InferenceError {
  override readonly name = "UpstreamTimeoutError";
  readonly status = 504;
  readonly code = "upstream_timeout";
  override readonly retryable = true;
  constructor(
    readonly provider: string,
    timeoutMs: number,
  ) {
    super(`${provider} did not answer in time`, `no data for ${timeoutMs} ms`);
  }
}

/** The provider's stream broke after it had started: never retried, the client already has part of it. */
export class UpstreamStreamError extends InferenceError {
  override readonly name = "UpstreamStreamError";
  readonly status = 502;
  readonly code = "upstream_stream_failed";
  constructor(
    readonly provider: string,
    details: string,
    options?: { cause?: unknown },
  ) {
    super(`${provider} stream failed`, details, options);
  }
}

/** The client went away (the gateway published a cancel). */
export class InferenceCancelledError extends InferenceError {
  override readonly name = "InferenceCancelledError";
  readonly status = 499;
  readonly code = "request_cancelled";
  constructor() {
    super("request cancelled by the client");
  }
}

/** Anything unexpected is reported as an internal error, never with its message. */
export class InternalInferenceError extends InferenceError {
  override readonly name = "InternalInferenceError";
  readonly status = 500;
  readonly code = "internal_error";
  override get clientMessage(): string {
    return "the inference worker failed unexpectedly; it has been logged";
  }
}

export function asInferenceError(err: unknown): InferenceError {
  if (err instanceof InferenceError) return err;
  return new InternalInferenceError("unexpected failure", (err as Error)?.message ?? String(err), { cause: err });
}
