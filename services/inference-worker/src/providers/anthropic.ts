/**
 * Anthropic Messages behind the OpenAI interface: requests are translated to Messages, responses and SSE
 * events back to `chat.completion` / `chat.completion.chunk`. Usage: prompt = input + cache read + cache
 * creation, cached = cache read (what OpenAI clients and our billing expect).
 */
import { UnsupportedRequestError, UpstreamStreamError } from "./errors.js";
import { ChunkEncoder, completionBody, type OpenAiToolCall } from "./openai-format.js";
import type { UpstreamSettings } from "./openai.js";
import {
  clientWantsUsage,
  type ChatCompletionBody,
  type Completion,
  type ProviderAdapter,
  type ProviderCall,
  type StreamedChunk,
  type TokenUsage,
} from "./provider.js";
import type { SseEvent } from "./sse.js";
import { postUpstream, readEvents, readJson, type UpstreamEndpoint } from "./upstream-http.js";
import type { Model } from "@worldrouter/pricing";

export const ANTHROPIC_DEFAULT_BASE_URL = "https://api.anthropic.com";
const ANTHROPIC_VERSION = "2023-06-01";
/**
 * Limit of a body that sets none (the gateway always sets the priced one): never the model's maximum, which would
 * let a completion cost more than the charge covered.
 */
const DEFAULT_MAX_TOKENS = 4096;

// ── OpenAI request side (what we read from the client's body) ──────────────────────────────────────────────
interface OpenAiPart {
  type: string;
  text?: string;
  refusal?: string;
  image_url?: { url: string; detail?: string } | string;
}
interface OpenAiMessageIn {
  role: string;
  content?: string | OpenAiPart[] | null;
  tool_calls?: { id: string; type?: string; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}
interface OpenAiTool {
  type: string;
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean };
}
type OpenAiToolChoice = "none" | "auto" | "required" | { type: "function"; function: { name: string } };

// ── Anthropic side ─────────────────────────────────────────────────────────────────────────────────────────
type AnthropicBlock =
  | { type: "text"; text: string }
  | { type: "image"; source: { type: "base64"; media_type: string; data: string } | { type: "url"; url: string } }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "tool_result"; tool_use_id: string; content: string | AnthropicBlock[] };
interface AnthropicMessage {
  role: "user" | "assistant";
  content: AnthropicBlock[];
}
export interface AnthropicRequest {
  model: string;
  max_tokens: number;
  messages: AnthropicMessage[];
  system?: string;
  temperature?: number;
  top_p?: number;
  stop_sequences?: string[];
  stream?: boolean;
  tools?: { name: string; description?: string; input_schema: Record<string, unknown> }[];
  tool_choice?: { type: "auto" | "any" | "none" | "tool"; name?: string; disable_parallel_tool_use?: boolean };
  metadata?: { user_id: string };
}
interface AnthropicUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}
interface AnthropicResponse {
  content?: ({ type: "text"; text: string } | { type: "tool_use"; id: string; name: string; input: unknown } | { type: string })[];
  stop_reason?: string | null;
  usage?: AnthropicUsage;
}

/** OpenAI chat-completions body → Anthropic Messages request. */
export function toAnthropicRequest(body: ChatCompletionBody, model: Model, stream: boolean): AnthropicRequest {
  if (typeof body.n === "number" && body.n > 1) throw new UnsupportedRequestError("n > 1 is not supported for Anthropic models");
  const system: string[] = [];
  const messages: AnthropicMessage[] = [];
  const append = (role: AnthropicMessage["role"], blocks: AnthropicBlock[]) => {
    if (blocks.length === 0) return;
    const last = messages.at(-1);
    // Anthropic wants alternating turns; consecutive same-role messages (e.g. several tool results) merge.
    if (last?.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  for (const message of (body.messages ?? []) as OpenAiMessageIn[]) {
    switch (message.role) {
      case "system":
      case "developer":
        system.push(textOf(message.content));
        break;
      case "user":
        append("user", userBlocks(message.content));
        break;
      case "assistant": {
        const text = textOf(message.content);
        const blocks: AnthropicBlock[] = text ? [{ type: "text", text }] : [];
        for (const call of message.tool_calls ?? [])
          blocks.push({ type: "tool_use", id: call.id, name: call.function.name, input: parseArguments(call.function.arguments) });
        append("assistant", blocks);
        break;
      }
      case "tool":
        append("user", [{ type: "tool_result", tool_use_id: message.tool_call_id ?? "", content: textOf(message.content) }]);
        break;
      default:
        throw new UnsupportedRequestError(`message role "${message.role}" is not supported for Anthropic models`);
    }
  }
  const request: AnthropicRequest = {
    model: model.upstreamModel,
    max_tokens: numberOf(body.max_completion_tokens) ?? numberOf(body.max_tokens) ?? Math.min(DEFAULT_MAX_TOKENS, model.maxOutputTokens),
    messages,
  };
  if (system.length > 0) request.system = system.join("\n\n");
  if (typeof body.temperature === "number") request.temperature = body.temperature;
  if (typeof body.top_p === "number") request.top_p = body.top_p;
  if (typeof body.stop === "string") request.stop_sequences = [body.stop];
  else if (Array.isArray(body.stop)) request.stop_sequences = body.stop as string[];
  if (stream) request.stream = true;
  const tools = body.tools as OpenAiTool[] | undefined;
  if (tools?.length) {
    request.tools = tools.map((tool) => ({
      name: tool.function.name,
      ...(tool.function.description ? { description: tool.function.description } : {}),
      input_schema: tool.function.parameters ?? { type: "object", properties: {} },
    }));
  }
  const choice = toolChoice(body.tool_choice as OpenAiToolChoice | undefined, body.parallel_tool_calls === false);
  if (choice && request.tools) request.tool_choice = choice;
  if (typeof body.user === "string") request.metadata = { user_id: body.user };
  return request;
}

function toolChoice(choice: OpenAiToolChoice | undefined, sequential: boolean): AnthropicRequest["tool_choice"] {
  const parallel = sequential ? { disable_parallel_tool_use: true } : {};
  if (choice === undefined) return sequential ? { type: "auto", ...parallel } : undefined;
  if (choice === "none") return { type: "none" };
  if (choice === "auto") return { type: "auto", ...parallel };
  if (choice === "required") return { type: "any", ...parallel };
  return { type: "tool", name: choice.function.name, ...parallel };
}

function userBlocks(content: OpenAiMessageIn["content"]): AnthropicBlock[] {
  if (typeof content === "string") return content ? [{ type: "text", text: content }] : [];
  return (content ?? []).map((part): AnthropicBlock => {
    if (part.type === "text") return { type: "text", text: part.text ?? "" };
    if (part.type === "image_url" && part.image_url)
      return imageBlock(typeof part.image_url === "string" ? part.image_url : part.image_url.url);
    throw new UnsupportedRequestError(`content part "${part.type}" is not supported for Anthropic models`);
  });
}

function imageBlock(url: string): AnthropicBlock {
  if (url.startsWith("data:")) {
    const match = /^data:([^;,]+);base64,(.*)$/s.exec(url);
    if (!match) throw new UnsupportedRequestError("image data URLs must be base64 encoded (data:<type>;base64,…)");
    return { type: "image", source: { type: "base64", media_type: match[1]!, data: match[2]! } };
  }
  return { type: "image", source: { type: "url", url } };
}

function textOf(content: OpenAiMessageIn["content"]): string {
  if (typeof content === "string") return content;
  return (content ?? []).map((part) => part.text ?? part.refusal ?? "").join("");
}

function parseArguments(args: string): unknown {
  try {
    return args ? JSON.parse(args) : {};
  } catch {
    throw new UnsupportedRequestError("assistant tool_calls[].function.arguments must be a JSON object");
  }
}

function numberOf(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

/** Anthropic stop_reason → OpenAI finish_reason. */
export function finishReasonOf(stopReason: string | null | undefined): string {
  switch (stopReason) {
    case "max_tokens":
      return "length";
    case "tool_use":
      return "tool_calls";
    case "refusal":
      return "content_filter";
    default:
      return "stop"; // end_turn, stop_sequence, pause_turn
  }
}

function usageOf(usage: AnthropicUsage | undefined): Partial<TokenUsage> {
  if (!usage) return {};
  const read = usage.cache_read_input_tokens ?? 0;
  const write = usage.cache_creation_input_tokens ?? 0;
  return {
    ...(typeof usage.input_tokens === "number"
      ? { promptTokens: usage.input_tokens + read + write, cachedTokens: read, cacheWriteTokens: write }
      : {}),
    ...(typeof usage.output_tokens === "number" ? { completionTokens: usage.output_tokens } : {}),
  };
}

const complete = (usage: Partial<TokenUsage>): TokenUsage => ({
  promptTokens: 0,
  completionTokens: 0,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  ...usage,
});

/** Anthropic message → serialised OpenAI `chat.completion`. */
export function fromAnthropicMessage(message: AnthropicResponse, requestId: string, model: string): Completion {
  let content = "";
  const toolCalls: OpenAiToolCall[] = [];
  for (const block of message.content ?? []) {
    if (block.type === "text") content += (block as { text: string }).text;
    else if (block.type === "tool_use") {
      const use = block as { id: string; name: string; input: unknown };
      toolCalls.push({ id: use.id, type: "function", function: { name: use.name, arguments: JSON.stringify(use.input ?? {}) } });
    }
  }
  const usage = usageOf(message.usage);
  const finishReason = finishReasonOf(message.stop_reason);
  return {
    data: completionBody({
      requestId,
      model,
      content: content || (toolCalls.length ? null : ""),
      toolCalls,
      finishReason,
      usage: complete(usage),
    }),
    text: content + toolCalls.map((call) => call.function.name + call.function.arguments).join(""),
    usage,
    finishReason,
  };
}

/** Turns Anthropic stream events into OpenAI chunks, one event at a time. */
export class AnthropicStreamTranslator {
  private readonly chunks: ChunkEncoder;
  /** Anthropic content block index → OpenAI tool_calls index. */
  private readonly toolIndex = new Map<number, number>();
  private reported: AnthropicUsage = {};
  private usage: Partial<TokenUsage> = {};
  stopped = false;

  constructor(
    requestId: string,
    model: string,
    private readonly wantsUsage: boolean,
  ) {
    this.chunks = new ChunkEncoder(requestId, model);
  }

  translate(event: SseEvent): StreamedChunk | undefined {
    const payload = parseEvent(event);
    switch (payload.type) {
      case "message_start": {
        // Its output_tokens is a placeholder: only the prompt side is known yet.
        const { output_tokens: _placeholder, ...prompt } = payload.message?.usage ?? {};
        this.reported = prompt;
        this.usage = usageOf(prompt);
        return { data: this.chunks.delta({ role: "assistant", content: "" }), text: "", usage: this.usage };
      }
      case "content_block_start": {
        const block = payload.content_block;
        if (block?.type === "text" && block.text) return { data: this.chunks.delta({ content: block.text }), text: block.text };
        if (block?.type !== "tool_use") return undefined;
        const index = this.toolIndex.size;
        this.toolIndex.set(payload.index ?? 0, index);
        const call = { index, id: block.id, type: "function", function: { name: block.name, arguments: "" } };
        return { data: this.chunks.delta({ tool_calls: [call] }), text: block.name ?? "" };
      }
      case "content_block_delta": {
        const delta = payload.delta;
        if (delta?.type === "text_delta") return { data: this.chunks.delta({ content: delta.text }), text: delta.text ?? "" };
        if (delta?.type === "input_json_delta") {
          const index = this.toolIndex.get(payload.index ?? 0) ?? 0;
          return {
            data: this.chunks.delta({ tool_calls: [{ index, function: { arguments: delta.partial_json ?? "" } }] }),
            text: delta.partial_json ?? "",
          };
        }
        // Thinking is billed as output but not shown: counted, not forwarded.
        if (delta?.type === "thinking_delta") return { text: delta.thinking ?? "" };
        return undefined;
      }
      case "message_delta": {
        this.reported = mergeUsage(this.reported, payload.usage);
        this.usage = usageOf(this.reported);
        const finishReason = finishReasonOf(payload.delta?.stop_reason);
        return { data: this.chunks.delta({}, finishReason), text: "", finishReason, usage: this.usage };
      }
      case "message_stop":
        this.stopped = true;
        return this.wantsUsage ? { data: this.chunks.usage(complete(this.usage)), text: "" } : undefined;
      case "error":
        throw new UpstreamStreamError("anthropic", payload.error?.message ?? "error event");
      default:
        return undefined; // ping, content_block_stop, unknown future events
    }
  }
}

/** Later usage reports (message_delta) repeat or extend the first; absent or null fields keep the earlier value. */
function mergeUsage(earlier: AnthropicUsage, later: AnthropicUsage | undefined): AnthropicUsage {
  const merged: AnthropicUsage = { ...earlier };
  for (const [key, value] of Object.entries(later ?? {}) as [keyof AnthropicUsage, number | null | undefined][]) {
    if (typeof value === "number") merged[key] = value;
  }
  return merged;
}

interface AnthropicEvent {
  type?: string;
  index?: number;
  message?: { usage?: AnthropicUsage };
  content_block?: { type: string; text?: string; id?: string; name?: string };
  delta?: { type?: string; text?: string; partial_json?: string; thinking?: string; stop_reason?: string | null };
  usage?: AnthropicUsage;
  error?: { type?: string; message?: string };
}

function parseEvent(event: SseEvent): AnthropicEvent {
  try {
    const payload = JSON.parse(event.data) as AnthropicEvent;
    return payload.type ? payload : { ...payload, type: event.event };
  } catch {
    throw new UpstreamStreamError("anthropic", `invalid event: ${event.data.slice(0, 200)}`);
  }
}

export class AnthropicProvider implements ProviderAdapter {
  readonly name = "anthropic";
  private readonly endpoint: UpstreamEndpoint;

  constructor(settings: UpstreamSettings) {
    this.endpoint = {
      provider: this.name,
      url: `${settings.baseUrl.replace(/\/+$/, "")}/v1/messages`,
      headers: {
        "content-type": "application/json",
        "anthropic-version": ANTHROPIC_VERSION,
        ...(settings.apiKey ? { "x-api-key": settings.apiKey } : {}),
      },
      timeoutMs: settings.timeoutMs,
      maxRetries: settings.maxRetries,
      backoffMs: settings.backoffMs,
      dispatcher: settings.dispatcher,
    };
  }

  async complete(call: ProviderCall): Promise<Completion> {
    const request = toAnthropicRequest(call.body, call.model, false);
    const upstream = await postUpstream(this.endpoint, JSON.stringify(request), call.signal);
    const { json } = await readJson(this.name, upstream);
    return fromAnthropicMessage(json as AnthropicResponse, call.requestId, call.model.id);
  }

  async *stream(call: ProviderCall): AsyncGenerator<StreamedChunk> {
    const request = toAnthropicRequest(call.body, call.model, true);
    const translator = new AnthropicStreamTranslator(call.requestId, call.model.id, clientWantsUsage(call.body));
    const upstream = await postUpstream(this.endpoint, JSON.stringify(request), call.signal);
    for await (const events of readEvents(this.name, upstream)) {
      for (const event of events) {
        const chunk = translator.translate(event);
        if (chunk) yield chunk;
      }
    }
    if (!translator.stopped) throw new UpstreamStreamError(this.name, "stream ended before message_stop");
  }
}
