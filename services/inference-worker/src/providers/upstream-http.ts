/**
 * One POST to a provider with the retry rules: 429/5xx/network/timeout are retried with exponential backoff
 * (honouring Retry-After) up to `maxRetries` times, and only before the response started; after that the
 * caller owns the body, read through `readEvents` with an idle timeout between chunks.
 *
 * undici's `request` rather than `fetch`: same connection pool, without the WHATWG streams layer, which costs
 * ~0.5 ms of time to first byte per request (bench/streaming.bench.mjs).
 */
import type { IncomingHttpHeaders } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { request, type Dispatcher } from "undici";
import {
  InferenceCancelledError,
  InferenceError,
  UpstreamRejectedError,
  UpstreamStreamError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from "./errors.js";
import { SseDecoder, type SseEvent } from "./sse.js";

export interface UpstreamEndpoint {
  provider: string;
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
  maxRetries: number;
  /** First backoff delay; doubled per retry, with jitter, capped at 8 s. */
  backoffMs?: number;
  /** Connection pool; undici's global one by default. */
  dispatcher?: Dispatcher;
}

const MAX_BACKOFF_MS = 8_000;
/** A Retry-After longer than this is not waited for: the error goes to the client instead. */
const MAX_RETRY_AFTER_MS = 30_000;

/**
 * An upstream attempt's abort signal: fires when the request is cancelled or when no data arrived for
 * `timeoutMs` (`touch()` on every chunk restarts the clock).
 */
export class AttemptDeadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly onCancel = () => this.controller.abort();
  timedOut = false;

  constructor(
    readonly timeoutMs: number,
    private readonly cancel: AbortSignal,
  ) {
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, timeoutMs);
    if (cancel.aborted) this.controller.abort();
    else cancel.addEventListener("abort", this.onCancel, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  touch(): void {
    this.timer.refresh();
  }

  /** Stops the clock and detaches from the request's cancel signal. */
  close(): void {
    clearTimeout(this.timer);
    this.cancel.removeEventListener("abort", this.onCancel);
  }

  /** What an error thrown while the attempt ran really means. */
  classify(err: unknown, provider: string, streamed: boolean): InferenceError {
    if (this.cancel.aborted) return new InferenceCancelledError();
    if (this.timedOut) return new UpstreamTimeoutError(provider, this.timeoutMs);
    if (err instanceof InferenceError) return err;
    const message = describe(err);
    return streamed
      ? new UpstreamStreamError(provider, message, { cause: err })
      : new UpstreamUnavailableError(provider, message, { cause: err });
  }
}

export interface UpstreamResponse {
  body: Dispatcher.ResponseData["body"];
  deadline: AttemptDeadline;
}

export async function postUpstream(endpoint: UpstreamEndpoint, body: string, cancel: AbortSignal): Promise<UpstreamResponse> {
  for (let attempt = 0; ; attempt++) {
    const deadline = new AttemptDeadline(endpoint.timeoutMs, cancel);
    let failure: InferenceError;
    try {
      const response = await request(endpoint.url, {
        method: "POST",
        headers: endpoint.headers,
        body,
        signal: deadline.signal,
        dispatcher: endpoint.dispatcher,
      });
      if (response.statusCode >= 200 && response.statusCode < 300) return { body: response.body, deadline };
      failure = await httpError(endpoint.provider, response);
      deadline.close();
    } catch (err) {
      deadline.close();
      failure = deadline.classify(err, endpoint.provider, false);
    }
    const retryAfterMs =
      failure instanceof UpstreamRejectedError || failure instanceof UpstreamUnavailableError ? failure.retryAfterMs : undefined;
    if (!failure.retryable || attempt >= endpoint.maxRetries || (retryAfterMs ?? 0) > MAX_RETRY_AFTER_MS) throw failure;
    try {
      await sleep(retryAfterMs ?? backoff(attempt, endpoint.backoffMs ?? 250), undefined, { signal: cancel });
    } catch {
      throw new InferenceCancelledError();
    }
  }
}

/** Reads a successful JSON response within the attempt's deadline. */
export async function readJson(
  provider: string,
  { body, deadline }: UpstreamResponse,
): Promise<{ text: string; json: Record<string, unknown> }> {
  try {
    const text = await body.text();
    const json = JSON.parse(text) as unknown;
    if (typeof json !== "object" || json === null) throw new UpstreamUnavailableError(provider, "response is not a JSON object");
    return { text, json: json as Record<string, unknown> };
  } catch (err) {
    throw deadline.classify(err, provider, false);
  } finally {
    deadline.close();
  }
}

/** The response body as SSE events; a broken or stalled body becomes UpstreamStreamError / UpstreamTimeoutError. */
export async function* readEvents(provider: string, { body, deadline }: UpstreamResponse): AsyncGenerator<SseEvent[]> {
  const decoder = new SseDecoder();
  try {
    for await (const bytes of body as AsyncIterable<Buffer>) {
      deadline.touch();
      const events = decoder.decode(bytes);
      if (events.length > 0) yield events;
    }
  } catch (err) {
    throw deadline.classify(err, provider, true);
  } finally {
    // An early return (the consumer stopped) left the for-await above, which destroyed the body and its socket.
    deadline.close();
  }
}

async function httpError(provider: string, response: Dispatcher.ResponseData): Promise<InferenceError> {
  const status = response.statusCode;
  const text = await response.body.text().catch(() => "");
  let message = text.slice(0, 2000) || response.statusText || `HTTP ${status}`;
  let code: string | undefined;
  try {
    const error = (JSON.parse(text) as { error?: { message?: unknown; code?: unknown; type?: unknown } }).error;
    if (typeof error?.message === "string") message = error.message;
    code = typeof error?.code === "string" ? error.code : typeof error?.type === "string" ? error.type : undefined;
  } catch {
    // Not JSON: keep the raw text.
  }
  const retryAfterMs = parseRetryAfter(response.headers);
  if (status >= 400 && status < 500) return new UpstreamRejectedError(provider, status, code, message, retryAfterMs);
  return new UpstreamUnavailableError(provider, `${status}: ${message}`, { retryAfterMs });
}

/** `retry-after-ms` (OpenAI), else `retry-after` in seconds or as an HTTP date. */
export function parseRetryAfter(headers: IncomingHttpHeaders): number | undefined {
  const header = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const ms = Number(header("retry-after-ms") ?? Number.NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = header("retry-after");
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function backoff(attempt: number, baseMs: number): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function describe(err: unknown): string {
  const error = err as { message?: string; cause?: { code?: string; message?: string } } | undefined;
  const cause = error?.cause?.code ?? error?.cause?.message;
  return cause ? `${error?.message ?? "request failed"} (${cause})` : (error?.message ?? String(err));
}
