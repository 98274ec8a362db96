import type { Model } from "@worldrouter/pricing";

/** An OpenAI chat-completions body as the gateway validated it; parameters we do not read pass through. */
export type ChatCompletionBody = Record<string, unknown>;

export interface ProviderCall {
  requestId: string;
  model: Model;
  body: ChatCompletionBody;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** Tokens as billed. `promptTokens` includes cached and cache-written tokens; reasoning is in `completionTokens`. */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  cacheWriteTokens: number;
}

/** One step of a streamed completion. */
export interface StreamedChunk {
  /** A serialised `chat.completion.chunk` for the client; absent for steps meant for us only. */
  data?: string;
  /** Text generated in this step (content, refusal, tool-call arguments), counted if usage never arrives. */
  text: string;
  finishReason?: string;
  /** Usage as far as the provider reported it by now (Anthropic sends prompt tokens first, output at the end). */
  usage?: Partial<TokenUsage>;
}

export interface Completion {
  /** The serialised `chat.completion`. */
  data: string;
  /** Generated text, counted if the provider reported no usage. */
  text: string;
  usage: Partial<TokenUsage>;
  finishReason: string | null;
}

/** A provider behind the OpenAI chat-completions interface. Errors thrown are `InferenceError`s. */
export interface ProviderAdapter {
  /** Label reported in usage events and on /v1/models: "openai", "anthropic" or "local". */
  readonly name: string;
  complete(call: ProviderCall): Promise<Completion>;
  /** Retries happen before the first chunk is yielded, never after. */
  stream(call: ProviderCall): AsyncIterable<StreamedChunk>;
}

/** Did the client ask for the final usage chunk? We always ask the provider for it, but forward it only then. */
export function clientWantsUsage(body: ChatCompletionBody): boolean {
  const options = body.stream_options as { include_usage?: unknown } | undefined | null;
  return options?.include_usage === true;
}
