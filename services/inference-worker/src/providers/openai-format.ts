/** Builders for the OpenAI response shapes, used by the providers that translate (Anthropic, local). */
import type { TokenUsage } from "./provider.js";

export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export interface OpenAiToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export function toOpenAiUsage(usage: TokenUsage): OpenAiUsage {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedTokens },
  };
}

/** Serialises the chunks of one streamed completion (same id, model and created on each). */
export class ChunkEncoder {
  private readonly prefix: string;

  constructor(requestId: string, model: string, created = Math.floor(Date.now() / 1000)) {
    this.prefix = `{"id":${JSON.stringify(completionId(requestId))},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},`;
  }

  delta(delta: Record<string, unknown>, finishReason: string | null = null): string {
    return `${this.prefix}"choices":[{"index":0,"delta":${JSON.stringify(delta)},"logprobs":null,"finish_reason":${JSON.stringify(finishReason)}}]}`;
  }

  usage(usage: TokenUsage): string {
    return `${this.prefix}"choices":[],"usage":${JSON.stringify(toOpenAiUsage(usage))}}`;
  }
}

export function completionBody(options: {
  requestId: string;
  model: string;
  content: string | null;
  toolCalls: OpenAiToolCall[];
  finishReason: string | null;
  usage: TokenUsage;
}): string {
  const message: Record<string, unknown> = { role: "assistant", content: options.content, refusal: null };
  if (options.toolCalls.length > 0) message.tool_calls = options.toolCalls;
  return JSON.stringify({
    id: completionId(options.requestId),
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: options.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: options.finishReason }],
    usage: toOpenAiUsage(options.usage),
  });
}

export const completionId = (requestId: string) => `chatcmpl-${requestId}`;
