/**
 * OpenAI Chat Completions: the body goes upstream as the client sent it (only `model`, `stream` and, when
 * streaming, `stream_options.include_usage` are set), and responses come back byte for byte.
 */
import { UpstreamStreamError } from "./errors.js";
import {
  clientWantsUsage,
  type ChatCompletionBody,
  type Completion,
  type ProviderAdapter,
  type ProviderCall,
  type StreamedChunk,
  type TokenUsage,
} from "./provider.js";
import type { Dispatcher } from "undici";
import { postUpstream, readEvents, readJson, type UpstreamEndpoint } from "./upstream-http.js";

export interface UpstreamSettings {
  apiKey: string | undefined;
  baseUrl: string;
  timeoutMs: number;
  maxRetries: number;
  backoffMs?: number;
  dispatcher?: Dispatcher;
}

export const OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1";

interface OpenAiChoice {
  finish_reason?: string | null;
  delta?: OpenAiMessage;
  message?: OpenAiMessage;
}
interface OpenAiMessage {
  content?: string | null;
  refusal?: string | null;
  tool_calls?: { function?: { name?: string; arguments?: string } }[];
}
interface OpenAiUsageIn {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
}

export class OpenAiProvider implements ProviderAdapter {
  readonly name = "openai";
  private readonly endpoint: UpstreamEndpoint;

  constructor(settings: UpstreamSettings) {
    this.endpoint = {
      provider: this.name,
      url: `${settings.baseUrl.replace(/\/+$/, "")}/chat/completions`,
      headers: { "content-type": "application/json", ...(settings.apiKey ? { authorization: `Bearer ${settings.apiKey}` } : {}) },
      timeoutMs: settings.timeoutMs,
      maxRetries: settings.maxRetries,
      backoffMs: settings.backoffMs,
      dispatcher: settings.dispatcher,
    };
  }

  async complete(call: ProviderCall): Promise<Completion> {
    const { stream_options: _ignored, ...body } = call.body;
    const upstream = await postUpstream(
      this.endpoint,
      JSON.stringify({ ...body, model: call.model.upstreamModel, stream: false }),
      call.signal,
    );
    const { text, json } = await readJson(this.name, upstream);
    const choices = (json.choices ?? []) as OpenAiChoice[];
    return {
      data: text,
      text: choices.map((choice) => generatedText(choice.message)).join(""),
      usage: usageOf(json.usage as OpenAiUsageIn | undefined),
      finishReason: choices[0]?.finish_reason ?? null,
    };
  }

  async *stream(call: ProviderCall): AsyncGenerator<StreamedChunk> {
    const wantsUsage = clientWantsUsage(call.body);
    const body: ChatCompletionBody = {
      ...call.body,
      model: call.model.upstreamModel,
      stream: true,
      stream_options: { ...(call.body.stream_options as object | undefined), include_usage: true },
    };
    const upstream = await postUpstream(this.endpoint, JSON.stringify(body), call.signal);
    let done = false;
    let finished = false;
    for await (const events of readEvents(this.name, upstream)) {
      for (const event of events) {
        if (done) continue;
        if (event.data === "[DONE]") {
          done = true;
          continue;
        }
        const chunk = parseChunk(event.data);
        const choices = chunk.choices ?? [];
        let text = "";
        let finishReason: string | undefined;
        for (const choice of choices) {
          text += generatedText(choice.delta);
          if (choice.finish_reason) finishReason = choice.finish_reason;
        }
        if (finishReason) finished = true;
        const usage = chunk.usage ? usageOf(chunk.usage) : undefined;
        const forClient = choices.length > 0 || !usage || wantsUsage;
        yield { data: forClient ? event.data : undefined, text, finishReason, usage };
      }
    }
    if (!done && !finished) throw new UpstreamStreamError(this.name, "stream ended before the completion finished");
  }
}

function parseChunk(data: string): { choices?: OpenAiChoice[]; usage?: OpenAiUsageIn | null; error?: { message?: string } } {
  let chunk: { choices?: OpenAiChoice[]; usage?: OpenAiUsageIn | null; error?: { message?: string } };
  try {
    chunk = JSON.parse(data);
  } catch {
    throw new UpstreamStreamError("openai", `invalid chunk: ${data.slice(0, 200)}`);
  }
  // OpenAI reports failures that happen mid-generation as an `error` event inside the stream.
  if (chunk.error) throw new UpstreamStreamError("openai", chunk.error.message ?? JSON.stringify(chunk.error));
  return chunk;
}

function generatedText(message: OpenAiMessage | undefined): string {
  if (!message) return "";
  let text = (message.content ?? "") + (message.refusal ?? "");
  for (const call of message.tool_calls ?? []) text += (call.function?.name ?? "") + (call.function?.arguments ?? "");
  return text;
}

function usageOf(usage: OpenAiUsageIn | null | undefined): Partial<TokenUsage> {
  if (!usage) return {};
  return {
    ...(typeof usage.prompt_tokens === "number" ? { promptTokens: usage.prompt_tokens } : {}),
    ...(typeof usage.completion_tokens === "number" ? { completionTokens: usage.completion_tokens } : {}),
    cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
    cacheWriteTokens: 0,
  };
}
