/**
 * Which request parameters the chosen provider can honour at the price we quote. Checked before the 402, so a
 * request that would fail upstream (or cost more than its price: audio, web search, priority tiers) is never paid.
 */
import type { Provider } from "@worldrouter/pricing";
import type { ChatCompletionRequest } from "./chat-request.js";

export interface RefusedParameter {
  param: string;
  message: string;
}

/** Served by every adapter: the OpenAI adapter passes them through, the Anthropic adapter translates them. */
const COMMON = [
  "model",
  "messages",
  "stream",
  "stream_options",
  "n",
  "max_tokens",
  "max_completion_tokens",
  "temperature",
  "top_p",
  "stop",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "user",
] as const;

/** OpenAI parameters that change neither what we serve nor what it costs beyond the tokens we price. */
const OPENAI_ONLY = [
  "presence_penalty",
  "frequency_penalty",
  "logit_bias",
  "logprobs",
  "top_logprobs",
  "seed",
  "response_format",
  "reasoning_effort",
  "verbosity",
  "store",
  "metadata",
  "safety_identifier",
  "prompt_cache_key",
] as const;

/** Parameters whose cost our price does not cover, with what they would bill. */
const UNPRICED: Record<string, string> = {
  audio: "audio output is billed per audio token, which the charge price does not cover",
  modalities: "only text output is sold here",
  web_search_options: "web search is billed per call, which the charge price does not cover",
  service_tier: "only the default service tier is sold here",
  prediction: "rejected prediction tokens are billed as output beyond the completion limit",
  functions: "the deprecated `functions` parameter is not supported; use `tools`",
  function_call: "the deprecated `function_call` parameter is not supported; use `tool_choice`",
};

const KNOWN: Record<Provider, ReadonlySet<string>> = {
  openai: new Set<string>([...COMMON, ...OPENAI_ONLY]),
  anthropic: new Set<string>(COMMON),
};

/** The first parameter of `request` that `provider` cannot serve at the quoted price, or undefined. */
export function refusedParameter(provider: Provider, request: ChatCompletionRequest): RefusedParameter | undefined {
  const body = request as Record<string, unknown>;
  for (const [param, value] of Object.entries(body)) {
    if (value === undefined || KNOWN[provider].has(param)) continue;
    const unpriced = Object.hasOwn(UNPRICED, param) ? UNPRICED[param] : undefined;
    if (unpriced !== undefined) {
      if (value === null || isPricedValue(param, value)) continue;
      return { param, message: `${param}: ${unpriced}` };
    }
    if (provider === "anthropic" && KNOWN.openai.has(param)) {
      if (value === null || isNeutralForAnthropic(param, value)) continue;
      return { param, message: `${param}: not supported for Anthropic models` };
    }
    return { param, message: `${param}: unknown parameter` };
  }
  return provider === "anthropic" ? refusedForAnthropic(request) : undefined;
}

/** Values of the otherwise unpriced parameters that ask for nothing extra. */
function isPricedValue(param: string, value: unknown): boolean {
  if (param === "modalities") return Array.isArray(value) && value.every((m) => m === "text");
  if (param === "service_tier") return value === "auto" || value === "default";
  return false;
}

/** OpenAI parameters the Anthropic adapter drops without changing the answer (their defaults). */
function isNeutralForAnthropic(param: string, value: unknown): boolean {
  switch (param) {
    case "logprobs":
    case "store":
      return value === false;
    case "presence_penalty":
    case "frequency_penalty":
      return value === 0;
    case "response_format":
      return (value as { type?: unknown }).type === "text";
    case "metadata":
      return typeof value === "object" && value !== null && Object.keys(value).length === 0;
    default:
      return false;
  }
}

/** What the Anthropic Messages API or our translation cannot express. */
function refusedForAnthropic(request: ChatCompletionRequest): RefusedParameter | undefined {
  if (typeof request.n === "number" && request.n > 1) return { param: "n", message: "n: Anthropic models return one choice (n must be 1)" };
  if (typeof request.temperature === "number" && request.temperature > 1)
    return { param: "temperature", message: "temperature: Anthropic models accept 0 to 1" };
  for (const [i, message] of request.messages.entries()) {
    if (message.role === "function")
      return { param: `messages[${i}].role`, message: `messages[${i}].role: "function" is not supported for Anthropic models` };
    if (message.role !== "user" || !Array.isArray(message.content)) continue;
    for (const [j, part] of message.content.entries()) {
      // Other roles' parts are read as text; user parts are translated one by one (text and images only).
      if (part.type !== "text" && part.type !== "image_url")
        return {
          param: `messages[${i}].content[${j}].type`,
          message: `messages[${i}].content[${j}].type: "${part.type}" is not supported for Anthropic models`,
        };
    }
  }
  for (const [i, tool] of (request.tools ?? []).entries()) {
    if (tool.type !== "function" || !tool.function)
      return { param: `tools[${i}]`, message: `tools[${i}]: Anthropic models take function tools only` };
  }
  const choice = request.tool_choice;
  if (
    typeof choice === "object" &&
    (choice.type !== "function" || typeof (choice as { function?: { name?: unknown } }).function?.name !== "string")
  )
    return { param: "tool_choice", message: 'tool_choice: Anthropic models take "none", "auto", "required" or a function' };
  return undefined;
}
