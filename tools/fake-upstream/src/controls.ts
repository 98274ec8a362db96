/**
 * Per-request behaviour of the fake: timing, length, usage extras and injected faults. Each control can be set by
 * an `x-fake-<name>` header, by a `:<name>=<value>` suffix on the model (for clients that cannot set headers, e.g.
 * `gpt-4o-mini:fault=429`), or by the server defaults, in that order of precedence.
 */
import type { IncomingHttpHeaders } from "node:http";

export type FakeFault = "429" | "500" | "overloaded" | "disconnect";

export interface FakeControls {
  /** Delay before the first streamed event (non-stream: before the response). */
  readonly ttftMs: number;
  /** Delay between streamed events (non-stream: added once per chunk to the response time). */
  readonly latencyMs: number;
  /** Completion length in tokens before max_tokens / stop sequences cut it. */
  readonly completionTokens: number;
  /** Tokens per streamed content chunk. */
  readonly chunkTokens: number;
  readonly fault: FakeFault | null;
  /** `retry-after` header of a 429, seconds. */
  readonly retryAfterSeconds: number;
  /** Stream: destroy the socket after this many SSE events. Non-stream: destroy it instead of responding. */
  readonly disconnectAfter: number | null;
  /** Only the first N attempts of a request key get the fault (default fault: 500). */
  readonly failTimes: number | null;
  /** Groups attempts for failTimes; default: a hash of the request body, so an identical retry matches. */
  readonly requestKey: string | null;
  /** Prompt tokens reported as cached (OpenAI cached_tokens, Anthropic cache_read_input_tokens). */
  readonly cachedTokens: number;
  /** Prompt tokens reported as written to the cache (Anthropic cache_creation_input_tokens). */
  readonly cacheWriteTokens: number;
  /** Extra completion tokens reported as reasoning (OpenAI completion_tokens_details.reasoning_tokens). */
  readonly reasoningTokens: number;
  /** "auto": call a tool when tools are given and tool_choice allows; "off": always answer with text. */
  readonly toolCall: "auto" | "off";
}

export const DEFAULT_CONTROLS: FakeControls = Object.freeze({
  ttftMs: 0,
  latencyMs: 0,
  completionTokens: 32,
  chunkTokens: 1,
  fault: null,
  retryAfterSeconds: 1,
  disconnectAfter: null,
  failTimes: null,
  requestKey: null,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  toolCall: "auto",
});

type Parser = (value: string) => FakeControls[keyof FakeControls] | undefined;

const count: Parser = (value) => (/^\d{1,9}$/.test(value) ? Number(value) : undefined);
const positive: Parser = (value) => (/^[1-9]\d{0,8}$/.test(value) ? Number(value) : undefined);
const oneOf =
  (...allowed: string[]): Parser =>
  (value) =>
    allowed.includes(value) ? (value as FakeControls[keyof FakeControls]) : undefined;

/** Control name (header suffix and model-suffix key) → field and parser. */
export const CONTROLS: Readonly<Record<string, { readonly field: keyof FakeControls; readonly parse: Parser; readonly values: string }>> = {
  "ttft-ms": { field: "ttftMs", parse: count, values: "integer ≥ 0" },
  "latency-ms": { field: "latencyMs", parse: count, values: "integer ≥ 0" },
  tokens: { field: "completionTokens", parse: count, values: "integer ≥ 0" },
  "chunk-tokens": { field: "chunkTokens", parse: positive, values: "integer ≥ 1" },
  fault: { field: "fault", parse: oneOf("429", "500", "overloaded", "disconnect"), values: "429 | 500 | overloaded | disconnect" },
  "retry-after": { field: "retryAfterSeconds", parse: count, values: "integer ≥ 0" },
  "disconnect-after": { field: "disconnectAfter", parse: count, values: "integer ≥ 0" },
  "fail-times": { field: "failTimes", parse: count, values: "integer ≥ 0" },
  "request-key": { field: "requestKey", parse: (value) => (value.length > 0 ? value : undefined), values: "non-empty string" },
  "cached-tokens": { field: "cachedTokens", parse: count, values: "integer ≥ 0" },
  "cache-write-tokens": { field: "cacheWriteTokens", parse: count, values: "integer ≥ 0" },
  "reasoning-tokens": { field: "reasoningTokens", parse: count, values: "integer ≥ 0" },
  "tool-call": { field: "toolCall", parse: oneOf("auto", "off"), values: "auto | off" },
};

const HEADERS = Object.keys(CONTROLS).map((name) => [name, `x-fake-${name}`] as const);

export class ControlError extends Error {
  override readonly name = "ControlError";
}

/** Splits `gpt-4o-mini:fault=429:ttft-ms=5` into the model and its controls; other `:` segments stay in the model. */
export function splitModel(requested: string): { model: string; suffix: Map<string, string> } {
  const suffix = new Map<string, string>();
  if (!requested.includes(":")) return { model: requested, suffix };
  const kept: string[] = [];
  for (const segment of requested.split(":")) {
    const eq = segment.indexOf("=");
    if (eq > 0) suffix.set(segment.slice(0, eq), segment.slice(eq + 1));
    else kept.push(segment);
  }
  return { model: kept.join(":"), suffix };
}

export function readControls(headers: IncomingHttpHeaders, suffix: ReadonlyMap<string, string>, defaults: FakeControls): FakeControls {
  let controls: Record<string, unknown> | undefined;
  const set = (name: string, raw: string, origin: string) => {
    const spec = CONTROLS[name];
    if (!spec) throw new ControlError(`unknown fake control ${origin}`);
    const value = spec.parse(raw.trim());
    if (value === undefined) throw new ControlError(`invalid fake control ${origin}=${JSON.stringify(raw)}: expected ${spec.values}`);
    controls ??= { ...defaults };
    controls[spec.field] = value;
  };
  for (const [name, value] of suffix) set(name, value, `model suffix :${name}`);
  for (const [name, header] of HEADERS) {
    const value = headers[header];
    if (typeof value === "string") set(name, value, header);
  }
  return (controls as FakeControls | undefined) ?? defaults;
}
