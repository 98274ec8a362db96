/** OpenAI Chat Completions: request validation, responses and SSE chunks in OpenAI's wire format. */
import type { ChatMessage, JsonSchema, ToolDefinition } from "@worldrouter/pricing";
import { chunksOf, planCompletion, type CompletionEnd, type CompletionMode, type CompletionPlan } from "./completion.js";
import type { FakeControls, FakeFault } from "./controls.js";
import type { Exchange } from "./exchange.js";
import { precomputed, seedOf } from "./generate.js";
import { nextId, type ProviderContext } from "./provider.js";

export interface ChatCompletionRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly stream?: boolean;
  readonly stream_options?: { readonly include_usage?: boolean };
  readonly n?: number;
  readonly max_tokens?: number;
  readonly max_completion_tokens?: number;
  readonly stop?: string | readonly string[];
  readonly response_format?: { readonly type: string; readonly json_schema?: { readonly name: string; readonly schema?: JsonSchema } };
  readonly tools?: readonly ToolDefinition[];
  readonly tool_choice?: "none" | "auto" | "required" | { readonly type: "function"; readonly function: { readonly name: string } };
}

export class OpenAiRequestError extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly status = 400,
    readonly type = "invalid_request_error",
  ) {
    super(message);
  }
}

export function openAiError(exchange: Exchange, error: OpenAiRequestError): void {
  exchange.json(error.status, { error: { message: error.message, type: error.type, param: error.param, code: error.code } });
}

const ROLES = ["system", "developer", "user", "assistant", "tool", "function"];

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const isPositiveInt = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 1;

/** Checks what the real API rejects with a 400; passes anything else through. */
export function parseChatCompletionRequest(body: unknown): ChatCompletionRequest {
  if (!isObject(body)) throw new OpenAiRequestError("We could not parse the JSON body of your request. The body must be a JSON object.");
  const { model, messages, n, stream, stream_options, stop, tools, tool_choice, response_format } = body;
  if (typeof model !== "string" || model.length === 0) throw new OpenAiRequestError("you must provide a model parameter");
  if (messages === undefined)
    throw new OpenAiRequestError("Missing required parameter: 'messages'.", "messages", "missing_required_parameter");
  if (!Array.isArray(messages))
    throw new OpenAiRequestError("Invalid type for 'messages': expected an array of objects.", "messages", "invalid_type");
  if (messages.length === 0) {
    throw new OpenAiRequestError(
      "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      "messages",
      "empty_array",
    );
  }
  messages.forEach((message: unknown, i) => {
    if (!isObject(message))
      throw new OpenAiRequestError(`Invalid type for 'messages[${i}]': expected an object.`, `messages[${i}]`, "invalid_type");
    if (!ROLES.includes(message.role as string)) {
      throw new OpenAiRequestError(
        `Invalid value: '${String(message.role)}'. Supported values are: ${ROLES.map((r) => `'${r}'`).join(", ")}.`,
        `messages[${i}].role`,
        "invalid_value",
      );
    }
  });
  if (n !== undefined && (!isPositiveInt(n) || n > 128))
    throw new OpenAiRequestError("Invalid 'n': expected an integer between 1 and 128.", "n", "invalid_value");
  for (const param of ["max_tokens", "max_completion_tokens"] as const) {
    if (body[param] !== undefined && body[param] !== null && !isPositiveInt(body[param])) {
      throw new OpenAiRequestError(`Invalid '${param}': expected an integer of at least 1.`, param, "invalid_value");
    }
  }
  if (stream !== undefined && stream !== null && typeof stream !== "boolean")
    throw new OpenAiRequestError("Invalid type for 'stream': expected a boolean.", "stream", "invalid_type");
  if (stream_options !== undefined && stream_options !== null && stream !== true) {
    throw new OpenAiRequestError(
      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      "stream_options",
      "invalid_value",
    );
  }
  if (stop !== undefined && stop !== null) {
    const list = typeof stop === "string" ? [stop] : stop;
    if (!Array.isArray(list) || list.length > 4 || list.some((s) => typeof s !== "string")) {
      throw new OpenAiRequestError("Invalid 'stop': expected a string or an array of at most 4 strings.", "stop", "invalid_value");
    }
  }
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) throw new OpenAiRequestError("Invalid type for 'tools': expected an array.", "tools", "invalid_type");
    tools.forEach((tool: unknown, i) => {
      if (!isObject(tool) || !isObject(tool.function) || typeof tool.function.name !== "string") {
        throw new OpenAiRequestError(
          `Missing required parameter: 'tools[${i}].function.name'.`,
          `tools[${i}].function.name`,
          "missing_required_parameter",
        );
      }
    });
  }
  if (isObject(tool_choice)) {
    const name = isObject(tool_choice.function) ? tool_choice.function.name : undefined;
    if (!Array.isArray(tools) || !tools.some((tool) => tool.function.name === name)) {
      throw new OpenAiRequestError(
        `Invalid value for 'tool_choice': function '${String(name)}' is not in 'tools'.`,
        "tool_choice",
        "invalid_value",
      );
    }
  } else if (tool_choice !== undefined && tool_choice !== null && !["none", "auto", "required"].includes(tool_choice as string)) {
    throw new OpenAiRequestError(
      `Invalid value: '${String(tool_choice)}'. Supported values are: 'none', 'auto' and 'required'.`,
      "tool_choice",
      "invalid_value",
    );
  }
  if (response_format !== undefined && response_format !== null) {
    if (!isObject(response_format) || !["text", "json_object", "json_schema"].includes(response_format.type as string)) {
      throw new OpenAiRequestError(
        "Invalid 'response_format.type': expected one of 'text', 'json_object', 'json_schema'.",
        "response_format.type",
        "invalid_value",
      );
    }
    if (
      response_format.type === "json_schema" &&
      !(isObject(response_format.json_schema) && typeof response_format.json_schema.name === "string")
    ) {
      throw new OpenAiRequestError(
        "Missing required parameter: 'response_format.json_schema.name'.",
        "response_format.json_schema.name",
        "missing_required_parameter",
      );
    }
  }
  return body as unknown as ChatCompletionRequest;
}

const contentDelta = precomputed((text) => `{"content":${JSON.stringify(text)}}`);

const FINISH: Record<CompletionEnd, string> = { end: "stop", stop_sequence: "stop", length: "length", tool: "tool_calls" };

function modeOf(request: ChatCompletionRequest, controls: FakeControls, seed: number): CompletionMode {
  const tools = request.tools ?? [];
  const choice = request.tool_choice;
  if (tools.length > 0 && choice !== "none" && controls.toolCall === "auto") {
    const named = typeof choice === "object" ? tools.find((tool) => tool.function.name === choice.function.name) : undefined;
    return { kind: "tool", tool: named ?? tools[seed % tools.length]!, preamble: false };
  }
  const format = request.response_format;
  if (format?.type === "json_object") return { kind: "json" };
  if (format?.type === "json_schema") return { kind: "json", schema: format.json_schema?.schema ?? { type: "object" } };
  return { kind: "text" };
}

export async function answerChatCompletion(
  context: ProviderContext,
  request: ChatCompletionRequest,
  model: string,
  controls: FakeControls,
): Promise<void> {
  const { exchange } = context;
  const messagesJson = JSON.stringify(request.messages);
  const promptTokens = await context.countPrompt(model, "o200k_base", request.messages, request.tools, messagesJson);
  if (exchange.finished) return;

  const seed = seedOf(model, messagesJson);
  const stop = request.stop === undefined || request.stop === null ? [] : typeof request.stop === "string" ? [request.stop] : request.stop;
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? undefined;
  const choices = Array.from({ length: request.n ?? 1 }, (_, index) => {
    const choiceSeed = seedOf(String(seed), String(index));
    return planCompletion({ seed: choiceSeed, mode: modeOf(request, controls, seed), tokens: controls.completionTokens, maxTokens, stop });
  });

  const completionTokens = choices.reduce((sum, choice) => sum + choice.tokens, 0) + controls.reasoningTokens;
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: Math.min(controls.cachedTokens, promptTokens), audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: controls.reasoningTokens,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
  const id = nextId("chatcmpl-");
  const created = Math.floor(Date.now() / 1000);
  const headers = { "x-request-id": id, "openai-processing-ms": "1" };

  if (request.stream) {
    const events = streamEvents({
      id,
      created,
      model,
      seed,
      choices,
      controls,
      usage: request.stream_options?.include_usage ? usage : null,
    });
    exchange.stream(controls, events, headers);
    return;
  }
  const chunks = Math.max(...choices.map((choice) => Math.ceil(choice.tokens / controls.chunkTokens)));
  exchange.delayedJson(
    controls,
    chunks,
    () => ({
      id,
      object: "chat.completion",
      created,
      model,
      choices: choices.map((choice, index) => ({
        index,
        message: {
          role: "assistant",
          content: choice.toolCall ? null : choice.content.join(""),
          ...(choice.toolCall && {
            tool_calls: [
              {
                id: toolCallId(seed, index),
                type: "function",
                function: { name: choice.toolCall.name, arguments: choice.toolCall.arguments },
              },
            ],
          }),
          refusal: null,
          annotations: [],
        },
        logprobs: null,
        finish_reason: FINISH[choice.end],
      })),
      usage,
      service_tier: "default",
      system_fingerprint: "fp_fake",
    }),
    headers,
  );
}

function toolCallId(seed: number, index: number): string {
  return `call_${seedOf(String(seed), "tool", String(index)).toString(36).padStart(7, "0")}`;
}

interface StreamInput {
  readonly id: string;
  readonly created: number;
  readonly model: string;
  readonly seed: number;
  readonly choices: readonly CompletionPlan[];
  readonly controls: FakeControls;
  readonly usage: object | null;
}

/** Every SSE event of the stream, precomputed: role chunks, content/argument chunks interleaved by choice, finish chunks, usage, [DONE]. */
function streamEvents({ id, created, model, seed, choices, controls, usage }: StreamInput): string[] {
  const usageField = usage ? ',"usage":null' : "";
  const head = `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":"fp_fake","choices":[{"index":`;
  const tail = `}]${usageField}}\n\n`;
  const chunk = (index: number, delta: string, finish: string | null = null) =>
    `${head}${index},"delta":${delta},"logprobs":null,"finish_reason":${finish === null ? "null" : `"${finish}"`}${tail}`;

  const events: string[] = [];
  const bodies = choices.map((choice, index) => {
    const call = choice.toolCall;
    const contentDeltas = chunksOf(choice.content, controls.chunkTokens).map(contentDelta);
    if (!call) {
      events.push(chunk(index, '{"role":"assistant","content":"","refusal":null}'));
      return contentDeltas;
    }
    const opening = `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"${toolCallId(seed, index)}","type":"function","function":{"name":${JSON.stringify(call.name)},"arguments":""}}],"refusal":null}`;
    events.push(chunk(index, opening));
    const argumentDeltas = chunksOf(call.fragments, controls.chunkTokens).map(
      (text) => `{"tool_calls":[{"index":0,"function":{"arguments":${JSON.stringify(text)}}}]}`,
    );
    return [...contentDeltas, ...argumentDeltas];
  });
  const longest = Math.max(...bodies.map((deltas) => deltas.length));
  for (let step = 0; step < longest; step++) {
    bodies.forEach((deltas, index) => {
      const delta = deltas[step];
      if (delta !== undefined) events.push(chunk(index, delta));
    });
  }
  for (const [index, choice] of choices.entries()) events.push(chunk(index, "{}", FINISH[choice.end]));
  if (usage) {
    events.push(
      `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":"fp_fake","choices":[],"usage":${JSON.stringify(usage)}}\n\n`,
    );
  }
  events.push("data: [DONE]\n\n");
  return events;
}

const FAULTS: Record<Exclude<FakeFault, "disconnect">, { status: number; type: string; code: string | null; message: string }> = {
  "429": {
    status: 429,
    type: "requests",
    code: "rate_limit_exceeded",
    message: "Rate limit reached for requests (fake upstream). Please try again later.",
  },
  "500": {
    status: 500,
    type: "server_error",
    code: null,
    message: "The server had an error while processing your request. Sorry about that!",
  },
  overloaded: { status: 503, type: "server_error", code: null, message: "The engine is currently overloaded, please try again later." },
};

export function openAiFault(exchange: Exchange, fault: Exclude<FakeFault, "disconnect">, controls: FakeControls): void {
  const { status, type, code, message } = FAULTS[fault];
  exchange.json(
    status,
    { error: { message, type, param: null, code } },
    fault === "429" ? { "retry-after": String(controls.retryAfterSeconds) } : {},
  );
}
