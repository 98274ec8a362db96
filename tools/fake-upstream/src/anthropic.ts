/** Anthropic Messages: request validation, message objects and the SSE event sequence in Anthropic's wire format. */
import type { ChatContentPart, ChatMessage, JsonSchema, ToolDefinition } from "@worldrouter/pricing";
import { chunksOf, planCompletion, type CompletionEnd, type CompletionMode, type CompletionPlan } from "./completion.js";
import type { FakeControls, FakeFault } from "./controls.js";
import type { Exchange } from "./exchange.js";
import { precomputed, seedOf } from "./generate.js";
import { nextId, type ProviderContext } from "./provider.js";

interface ContentBlock {
  readonly type: string;
  readonly text?: string;
  readonly name?: string;
  readonly input?: unknown;
  readonly content?: string | readonly ContentBlock[];
}

export interface MessagesRequest {
  readonly model: string;
  readonly max_tokens: number;
  readonly messages: readonly { readonly role: "user" | "assistant"; readonly content: string | readonly ContentBlock[] }[];
  readonly system?: string | readonly ContentBlock[];
  readonly stop_sequences?: readonly string[];
  readonly stream?: boolean;
  readonly tools?: readonly { readonly name: string; readonly description?: string; readonly input_schema?: JsonSchema }[];
  readonly tool_choice?: { readonly type: "auto" | "any" | "tool" | "none"; readonly name?: string };
}

export class AnthropicRequestError extends Error {
  constructor(
    message: string,
    readonly status = 400,
    readonly type = "invalid_request_error",
  ) {
    super(message);
  }
}

export function anthropicError(exchange: Exchange, error: AnthropicRequestError, headers = {}): void {
  exchange.json(error.status, { type: "error", error: { type: error.type, message: error.message } }, headers);
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

export function parseMessagesRequest(body: unknown): MessagesRequest {
  if (!isObject(body)) throw new AnthropicRequestError("Input should be a valid dictionary");
  const { model, max_tokens, messages, stop_sequences, tools, tool_choice, system, stream } = body;
  if (typeof model !== "string" || model.length === 0) throw new AnthropicRequestError("model: Field required");
  if (max_tokens === undefined) throw new AnthropicRequestError("max_tokens: Field required");
  if (!Number.isInteger(max_tokens) || (max_tokens as number) < 1)
    throw new AnthropicRequestError("max_tokens: Input should be an integer greater than or equal to 1");
  if (messages === undefined) throw new AnthropicRequestError("messages: Field required");
  if (!Array.isArray(messages)) throw new AnthropicRequestError("messages: Input should be a valid list");
  if (messages.length === 0) throw new AnthropicRequestError("messages: at least one message is required");
  messages.forEach((message: unknown, i) => {
    if (!isObject(message) || (message.role !== "user" && message.role !== "assistant")) {
      throw new AnthropicRequestError(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    }
    if (typeof message.content !== "string" && !Array.isArray(message.content))
      throw new AnthropicRequestError(`messages.${i}.content: Field required`);
  });
  if (system !== undefined && typeof system !== "string" && !Array.isArray(system))
    throw new AnthropicRequestError("system: Input should be a valid string or list");
  if (stream !== undefined && typeof stream !== "boolean") throw new AnthropicRequestError("stream: Input should be a valid boolean");
  if (stop_sequences !== undefined && (!Array.isArray(stop_sequences) || stop_sequences.some((s) => typeof s !== "string"))) {
    throw new AnthropicRequestError("stop_sequences: Input should be a valid list of strings");
  }
  if (tools !== undefined) {
    if (!Array.isArray(tools)) throw new AnthropicRequestError("tools: Input should be a valid list");
    tools.forEach((tool: unknown, i) => {
      if (!isObject(tool) || typeof tool.name !== "string") throw new AnthropicRequestError(`tools.${i}.name: Field required`);
      if (!isObject(tool.input_schema)) throw new AnthropicRequestError(`tools.${i}.input_schema: Field required`);
    });
  }
  if (tool_choice !== undefined) {
    if (!isObject(tool_choice) || !["auto", "any", "tool", "none"].includes(tool_choice.type as string)) {
      throw new AnthropicRequestError("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'");
    }
    if (tool_choice.type === "tool" && !(Array.isArray(tools) && tools.some((tool) => tool.name === tool_choice.name))) {
      throw new AnthropicRequestError(`tool_choice: tool '${String(tool_choice.name)}' not found in tools`);
    }
  }
  return body as unknown as MessagesRequest;
}

/** The request as OpenAI-shaped messages and tools, so it is counted by the same rules as the gateway's estimate. */
export function asChatMessages(request: MessagesRequest): { messages: ChatMessage[]; tools: ToolDefinition[] | undefined } {
  const messages: ChatMessage[] = [];
  if (request.system !== undefined)
    messages.push({ role: "system", content: typeof request.system === "string" ? request.system : textParts(request.system) });
  for (const message of request.messages) {
    if (typeof message.content === "string") {
      messages.push({ role: message.role, content: message.content });
      continue;
    }
    const toolCalls = message.content
      .filter((block) => block.type === "tool_use")
      .map((block) => ({ function: { name: block.name ?? "", arguments: JSON.stringify(block.input ?? {}) } }));
    messages.push({ role: message.role, content: textParts(message.content), ...(toolCalls.length > 0 && { tool_calls: toolCalls }) });
  }
  const tools = request.tools?.map((tool) => ({
    type: "function",
    function: {
      name: tool.name,
      ...(tool.description !== undefined && { description: tool.description }),
      ...(tool.input_schema && { parameters: tool.input_schema }),
    },
  }));
  return { messages, tools };
}

function textParts(blocks: readonly ContentBlock[]): ChatContentPart[] {
  return blocks.flatMap((block): ChatContentPart[] => {
    if (block.type === "text") return [{ type: "text", text: block.text ?? "" }];
    if (block.type === "tool_result")
      return typeof block.content === "string" ? [{ type: "text", text: block.content }] : textParts(block.content ?? []);
    if (block.type === "tool_use") return [];
    return [{ type: block.type }];
  });
}

const STOP_REASON: Record<CompletionEnd, string> = {
  end: "end_turn",
  stop_sequence: "stop_sequence",
  length: "max_tokens",
  tool: "tool_use",
};

function modeOf(request: MessagesRequest, controls: FakeControls, seed: number): CompletionMode {
  const tools = request.tools ?? [];
  const choice = request.tool_choice?.type ?? "auto";
  if (tools.length === 0 || choice === "none" || controls.toolCall === "off") return { kind: "text" };
  const named = choice === "tool" ? tools.find((tool) => tool.name === request.tool_choice?.name) : undefined;
  const tool = named ?? tools[seed % tools.length]!;
  return {
    kind: "tool",
    tool: { type: "function", function: { name: tool.name, parameters: tool.input_schema ?? { type: "object" } } },
    preamble: choice === "auto",
  };
}

export async function answerMessages(
  context: ProviderContext,
  request: MessagesRequest,
  model: string,
  controls: FakeControls,
): Promise<void> {
  const { exchange } = context;
  const { messages, tools } = asChatMessages(request);
  const messagesJson = JSON.stringify(messages);
  const promptTokens = await context.countPrompt(model, "anthropic-approx", messages, tools, messagesJson);
  if (exchange.finished) return;

  const seed = seedOf(model, messagesJson);
  const plan = planCompletion({
    seed,
    mode: modeOf(request, controls, seed),
    tokens: controls.completionTokens,
    maxTokens: request.max_tokens,
    stop: request.stop_sequences ?? [],
  });
  const cacheRead = Math.min(controls.cachedTokens, promptTokens);
  const cacheWrite = Math.min(controls.cacheWriteTokens, promptTokens - cacheRead);
  const inputUsage = {
    input_tokens: promptTokens - cacheRead - cacheWrite,
    cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: cacheRead,
  };
  const id = nextId("msg_");
  const toolUseId = `toolu_${seedOf(String(seed), "tool").toString(36).padStart(7, "0")}`;
  const headers = { "request-id": nextId("req_") };

  if (request.stream) {
    exchange.stream(controls, streamEvents({ id, model, plan, toolUseId, inputUsage, chunkTokens: controls.chunkTokens }), headers);
    return;
  }
  const content: object[] = [];
  if (plan.content.length > 0 || !plan.toolCall) content.push({ type: "text", text: plan.content.join("") });
  if (plan.toolCall)
    content.push({ type: "tool_use", id: toolUseId, name: plan.toolCall.name, input: parseToolInput(plan.toolCall.arguments) });
  exchange.delayedJson(
    controls,
    Math.ceil(plan.tokens / controls.chunkTokens),
    () => ({
      id,
      type: "message",
      role: "assistant",
      model,
      content,
      stop_reason: STOP_REASON[plan.end],
      stop_sequence: plan.stopSequence,
      usage: { ...inputUsage, output_tokens: plan.tokens, service_tier: "standard" },
    }),
    headers,
  );
}

/** A call cut by max_tokens has incomplete JSON; Anthropic then returns what it could parse, here an empty input. */
function parseToolInput(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

interface StreamInput {
  readonly id: string;
  readonly model: string;
  readonly plan: CompletionPlan;
  readonly toolUseId: string;
  readonly inputUsage: object;
  readonly chunkTokens: number;
}

const event = (type: string, data: string) => `event: ${type}\ndata: ${data}\n\n`;
const textDelta = precomputed((text) => `{"type":"text_delta","text":${JSON.stringify(text)}}`);

function streamEvents({ id, model, plan, toolUseId, inputUsage, chunkTokens }: StreamInput): string[] {
  const start = {
    id,
    type: "message",
    role: "assistant",
    model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { ...inputUsage, output_tokens: 1 },
  };
  const events = [event("message_start", JSON.stringify({ type: "message_start", message: start }))];
  let index = 0;
  const block = (contentBlock: object, deltas: string[]) => {
    events.push(
      event("content_block_start", `{"type":"content_block_start","index":${index},"content_block":${JSON.stringify(contentBlock)}}`),
    );
    if (index === 0) events.push(event("ping", '{"type": "ping"}'));
    for (const delta of deltas)
      events.push(event("content_block_delta", `{"type":"content_block_delta","index":${index},"delta":${delta}}`));
    events.push(event("content_block_stop", `{"type":"content_block_stop","index":${index}}`));
    index++;
  };
  if (plan.content.length > 0 || !plan.toolCall) {
    block({ type: "text", text: "" }, chunksOf(plan.content, chunkTokens).map(textDelta));
  }
  if (plan.toolCall) {
    block(
      { type: "tool_use", id: toolUseId, name: plan.toolCall.name, input: {} },
      ["", ...chunksOf(plan.toolCall.fragments, chunkTokens)].map(
        (json) => `{"type":"input_json_delta","partial_json":${JSON.stringify(json)}}`,
      ),
    );
  }
  events.push(
    event(
      "message_delta",
      JSON.stringify({
        type: "message_delta",
        delta: { stop_reason: STOP_REASON[plan.end], stop_sequence: plan.stopSequence },
        usage: { output_tokens: plan.tokens },
      }),
    ),
  );
  events.push(event("message_stop", '{"type":"message_stop"}'));
  return events;
}

const FAULTS: Record<Exclude<FakeFault, "disconnect">, AnthropicRequestError> = {
  "429": new AnthropicRequestError(
    "Number of request tokens has exceeded your per-minute rate limit (fake upstream).",
    429,
    "rate_limit_error",
  ),
  "500": new AnthropicRequestError("Internal server error", 500, "api_error"),
  overloaded: new AnthropicRequestError("Overloaded", 529, "overloaded_error"),
};

export function anthropicFault(exchange: Exchange, fault: Exclude<FakeFault, "disconnect">, controls: FakeControls): void {
  anthropicError(exchange, FAULTS[fault], fault === "429" ? { "retry-after": String(controls.retryAfterSeconds) } : {});
}
