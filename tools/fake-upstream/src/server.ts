/**
 * The fake upstream's HTTP server: routing, auth checks of each provider, fault injection and prompt counting.
 * node:http without a framework, so that as a benchmark baseline it adds as little as possible.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  countPromptTokensOffThread,
  getModel,
  listModels,
  type ChatMessage,
  type TokenizerId,
  type ToolDefinition,
} from "@worldrouter/pricing";
import { AnthropicRequestError, anthropicError, anthropicFault, answerMessages, parseMessagesRequest } from "./anthropic.js";
import { ControlError, DEFAULT_CONTROLS, readControls, splitModel, type FakeControls, type FakeFault } from "./controls.js";
import { Exchange } from "./exchange.js";
import { answerChatCompletion, OpenAiRequestError, openAiError, openAiFault, parseChatCompletionRequest } from "./openai.js";
import type { ProviderContext } from "./provider.js";
import { StatsRecorder, type FakeUpstreamStats } from "./stats.js";

export interface FakeUpstreamOptions {
  /** 0 (default): a free port. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Server-wide controls; request headers and model suffixes override them. */
  readonly defaults?: Partial<FakeControls>;
}

export interface FakeUpstream {
  /** Base URL without a path: OpenAI clients use `${url}/v1`, Anthropic clients use `url`. */
  readonly url: string;
  readonly port: number;
  /** Live counters. */
  readonly stats: FakeUpstreamStats;
  /** Zeroes the counters and forgets fail-times attempts. */
  resetStats(): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024 * 1024;
const PROMPT_CACHE_SIZE = 1024;

type Provider = "openai" | "anthropic";

export async function startFakeUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const defaults: FakeControls = Object.freeze({ ...DEFAULT_CONTROLS, ...options.defaults });
  const recorder = new StatsRecorder();
  const attempts = new Map<string, number>();
  const promptCounts = new Map<string, number>();
  const modelList = {
    object: "list",
    data: listModels().map((model) => ({ id: model.id, object: "model", created: 1_700_000_000, owned_by: model.provider })),
  };

  async function countPrompt(
    model: string,
    fallback: TokenizerId,
    messages: readonly ChatMessage[],
    tools: readonly ToolDefinition[] | undefined,
    messagesJson: string,
  ): Promise<number> {
    const tokenizer = getModel(model)?.tokenizer ?? fallback;
    const key = createHash("sha1")
      .update(tokenizer)
      .update(messagesJson)
      .update(tools ? JSON.stringify(tools) : "")
      .digest("base64");
    const cached = promptCounts.get(key);
    if (cached !== undefined) return cached;
    const tokens = await countPromptTokensOffThread({ tokenizer }, messages, tools);
    if (promptCounts.size >= PROMPT_CACHE_SIZE) promptCounts.delete(promptCounts.keys().next().value!);
    promptCounts.set(key, tokens);
    return tokens;
  }

  /** The fault this attempt gets: always the configured one, or only for the first failTimes attempts of its key. */
  function faultFor(controls: FakeControls, raw: Buffer): FakeFault | null {
    if (controls.failTimes === null) return controls.fault;
    const key = controls.requestKey ?? createHash("sha1").update(raw).digest("base64");
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    return attempt <= controls.failTimes ? (controls.fault ?? "500") : null;
  }

  async function handleCompletion(provider: Provider, exchange: Exchange, raw: Buffer): Promise<void> {
    const { req } = exchange;
    const reject = (message: string, status: number, openAiType = "invalid_request_error", anthropicType = "invalid_request_error") =>
      provider === "openai"
        ? openAiError(exchange, new OpenAiRequestError(message, null, null, status, openAiType))
        : anthropicError(exchange, new AnthropicRequestError(message, status, anthropicType));

    if (provider === "openai" && !/^Bearer \S/.test(req.headers.authorization ?? "")) {
      return reject(
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        401,
      );
    }
    if (provider === "anthropic") {
      if (!req.headers["x-api-key"]) return reject("x-api-key header is required", 401, undefined, "authentication_error");
      if (!req.headers["anthropic-version"]) return reject("anthropic-version: header is required", 400);
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch {
      return reject("We could not parse the JSON body of your request.", 400);
    }
    try {
      const request = provider === "openai" ? parseChatCompletionRequest(body) : parseMessagesRequest(body);
      const { model, suffix } = splitModel(request.model);
      const controls = readControls(req.headers, suffix, defaults);
      const fault = faultFor(controls, raw);
      if (fault !== null) {
        recorder.faultInjected();
        if (fault === "disconnect") return exchange.disconnect();
        return provider === "openai" ? openAiFault(exchange, fault, controls) : anthropicFault(exchange, fault, controls);
      }
      const context: ProviderContext = { exchange, countPrompt };
      if (provider === "openai")
        await answerChatCompletion(context, request as ReturnType<typeof parseChatCompletionRequest>, model, controls);
      else await answerMessages(context, request as ReturnType<typeof parseMessagesRequest>, model, controls);
    } catch (error) {
      if (error instanceof OpenAiRequestError) return openAiError(exchange, error);
      if (error instanceof AnthropicRequestError) return anthropicError(exchange, error);
      if (error instanceof ControlError) return reject(error.message, 400);
      throw error;
    }
  }

  function route(req: IncomingMessage, res: ServerResponse): void {
    const exchange = new Exchange(req, res, recorder);
    const path = req.url?.split("?", 1)[0];
    const provider: Provider | null =
      req.method === "POST" && path === "/v1/chat/completions"
        ? "openai"
        : req.method === "POST" && path === "/v1/messages"
          ? "anthropic"
          : null;
    if (provider === null) {
      if (req.method === "GET" && path === "/v1/models") {
        recorder.request("models");
        exchange.json(200, modelList);
        return;
      }
      recorder.request("other");
      req.resume();
      openAiError(exchange, new OpenAiRequestError(`Invalid URL (${req.method} ${path})`, null, null, 404));
      return;
    }
    recorder.request(provider === "openai" ? "chatCompletions" : "messages");
    readBody(req)
      .then((raw) => handleCompletion(provider, exchange, raw))
      .catch((error: unknown) => {
        if (exchange.finished) return;
        const tooLarge = error instanceof BodyTooLargeError;
        const message = tooLarge ? "Request body too large." : `Internal error in the fake upstream: ${String(error)}`;
        if (provider === "openai")
          openAiError(
            exchange,
            new OpenAiRequestError(message, null, null, tooLarge ? 413 : 500, tooLarge ? "invalid_request_error" : "server_error"),
          );
        else
          anthropicError(exchange, new AnthropicRequestError(message, tooLarge ? 413 : 500, tooLarge ? "request_too_large" : "api_error"));
      });
  }

  const server = createServer({ keepAliveTimeout: 65_000 }, route);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port, address, family } = server.address() as AddressInfo;
  const host = family === "IPv6" ? `[${address}]` : address;

  return {
    url: `http://${host}:${port}`,
    port,
    stats: recorder.stats,
    resetStats() {
      recorder.reset();
      attempts.clear();
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

class BodyTooLargeError extends Error {}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners("data");
        req.resume();
        reject(new BodyTooLargeError());
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
