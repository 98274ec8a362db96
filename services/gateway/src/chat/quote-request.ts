import { Inject, Injectable } from "@nestjs/common";
import { isProviderConfigured, type Config } from "@worldrouter/config";
import {
  completionLimit,
  countPromptTokensOffThread,
  estimateCost,
  limitTokenCounterQueue,
  priceCharge,
  type ChatMessage,
  type Model,
  type ModelRegistry,
  TokenizerBusyError,
  type ToolDefinition,
} from "@worldrouter/pricing";
import { counter } from "@worldrouter/observability";
import { CONFIG, METRICS } from "@worldrouter/runtime";
import type { Counter, Registry } from "prom-client";
import { MODEL_REGISTRY } from "../pricing/model-registry.provider.js";
import { problem, ProblemException } from "../http/problem.js";
import type { ChatCompletionRequest } from "./chat-request.js";
import { refusedParameter } from "./provider-parameters.js";

/** Quotes one gateway process remembers (a few MB at most: a quote is a handful of numbers and a model reference). */
const QUOTE_CACHE_ENTRIES = 10_000;

/** How a charge is priced, as the 402 body states it (docs/money.md "The charge price"). */
export const PRICE_RULE =
  "max(ceil(prompt_tokens × input × overhead), ceil((prompt_tokens × dearest input price + n × completion limit × output) × overhead)), " +
  "completion limit = max_completion_tokens ?? max_tokens ?? CHARGE_DEFAULT_MAX_TOKENS, capped at the model's max output; " +
  "the provider is called with that limit, so a lower max_tokens pays less";

export interface Quote {
  model: Model;
  promptTokens: number;
  /** Choices asked for (`n`). */
  choices: number;
  /** Completion tokens per choice the provider is called with (max_completion_tokens ?? max_tokens ?? default, capped). */
  completionLimit: number;
  /** The published seed estimate: ceil(prompt_tokens × input_price × overhead), at least MIN_CHARGE. */
  estimate: bigint;
  /** What the 402 asks for: the seed estimate, or the prompt plus the largest completion allowed if dearer (`priceCharge`). */
  amount: bigint;
}

/**
 * Prices a chat request: the charge-intent amount the 402 challenge asks for. Refuses, before any price, what
 * cannot be served: unknown models, models without a real provider in production, parameters the provider cannot
 * honour at this price, prompts beyond the context window.
 */
@Injectable()
export class QuoteRequest {
  /**
   * Quotes by the digest of the exact body, for as long as its challenge is payable: the paid retry of a 402 (same
   * bytes, same digest) is priced without counting its tokens again. Insertion-ordered, so the oldest goes first.
   */
  private readonly byDigest = new Map<string, { quote: Quote; expiresAt: number }>();
  private readonly cacheOutcomes: Counter<"outcome">;

  constructor(
    @Inject(MODEL_REGISTRY) private readonly models: ModelRegistry,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(METRICS) metrics: Registry,
  ) {
    limitTokenCounterQueue({ maxQueued: config.edge.tokenizerMaxQueued, maxQueuedPerClient: config.edge.tokenizerMaxQueuedPerClient });
    this.cacheOutcomes = counter(metrics, "wr_quote_cache_total", "Quotes served from the body-digest cache (hit) or computed (miss)", [
      "outcome",
    ]);
  }

  /** `quote`, remembered by the body's digest (sha-256 of its bytes) for CHALLENGE_TTL_SECONDS. */
  async quoteBody(request: ChatCompletionRequest, digest: string, client?: string): Promise<Quote> {
    const now = Date.now();
    const cached = this.byDigest.get(digest);
    if (cached && cached.expiresAt > now) {
      this.cacheOutcomes.inc({ outcome: "hit" });
      return cached.quote;
    }
    this.cacheOutcomes.inc({ outcome: "miss" });
    const quote = await this.quote(request, client);
    this.byDigest.delete(digest);
    this.byDigest.set(digest, { quote, expiresAt: now + this.config.mpp.challengeTtlSeconds * 1000 });
    if (this.byDigest.size > QUOTE_CACHE_ENTRIES) this.byDigest.delete(this.byDigest.keys().next().value!);
    return quote;
  }

  /** `client` (the rate limits' key) bounds its share of the token-counting queue (TOKENIZER_MAX_QUEUED_PER_CLIENT). */
  async quote(request: ChatCompletionRequest, client?: string): Promise<Quote> {
    const model = this.models.getModel(request.model);
    if (!model) {
      throw new ProblemException(
        problem(
          404,
          "model-not-found",
          "Model Not Found",
          `The model '${request.model}' does not exist or is not sold here. GET /v1/models lists every model with its price.`,
        ),
        {},
        { type: "invalid_request_error", code: "model_not_found", param: "model" },
      );
    }
    if (this.config.env === "production" && !isProviderConfigured(this.config, model.provider)) {
      throw new ProblemException(
        problem(
          503,
          "model-unavailable",
          "Model Unavailable",
          `The model '${model.id}' is not served right now: its provider (${model.provider}) is not configured. GET /v1/models lists the models served.`,
        ),
        {},
        { type: "server_error", code: "model_unavailable", param: "model" },
      );
    }
    const refused = refusedParameter(model.provider, request);
    if (refused) {
      throw new ProblemException(
        problem(400, "unsupported-parameter", "Unsupported Parameter", `${refused.message} (model ${model.id}); nothing was charged.`, {
          param: refused.param,
        }),
        {},
        { type: "invalid_request_error", code: "unsupported_parameter", param: refused.param },
      );
    }
    this.refuseOversized(request);
    const promptTokens = await countPromptTokensOffThread(
      model,
      request.messages as unknown as ChatMessage[],
      request.tools as unknown as ToolDefinition[] | undefined,
      client,
    ).catch((err: unknown) => {
      if (!(err instanceof TokenizerBusyError)) throw err;
      throw new ProblemException(
        problem(503, "tokenizer-busy", "Service Busy", `${err.message}; nothing was charged, retry in a second`, { retryAfter: 1 }),
        { "retry-after": "1" },
        { type: "server_error", code: "tokenizer_busy" },
      );
    });
    const { minimumCharge, defaultMaxTokens } = this.config.pricing;
    // The prompt and the completion share the context window: the provider refuses a limit that does not fit in what
    // the prompt leaves, so an explicit one is refused here (before payment) and the default shrinks to fit.
    const room = model.contextWindow - promptTokens;
    const requested = request.max_completion_tokens ?? request.max_tokens;
    const requestedLimit = requested == null ? 0 : Math.min(requested, model.maxOutputTokens);
    if (room < 1 || requestedLimit > room) {
      const asked = requested == null ? "" : ` and up to ${requestedLimit} completion tokens`;
      throw new ProblemException(
        problem(
          400,
          "context-length-exceeded",
          "Context Length Exceeded",
          `This request has ${promptTokens} prompt tokens${asked}; ${model.id} accepts at most ${model.contextWindow} in all.`,
        ),
        {},
        {
          type: "invalid_request_error",
          code: "context_length_exceeded",
          param: room < 1 ? "messages" : request.max_completion_tokens == null ? "max_tokens" : "max_completion_tokens",
        },
      );
    }
    const limit = completionLimit({
      model,
      maxCompletionTokens: request.max_completion_tokens,
      maxTokens: request.max_tokens,
      defaultMaxTokens: Math.min(defaultMaxTokens, room),
    });
    const choices = request.n ?? 1;
    const estimate = estimateCost({ model, promptTokens: BigInt(promptTokens), minimumCharge });
    const amount = priceCharge({
      model,
      promptTokens: BigInt(promptTokens),
      choices: BigInt(choices),
      completionLimit: BigInt(limit),
      minimumCharge,
    });
    return { model, promptTokens, choices, completionLimit: limit, estimate, amount };
  }

  /** MAX_MESSAGES and MAX_PROMPT_CHARS, checked before any tokenizing: the work an unpaid request can cause is bounded. */
  private refuseOversized(request: ChatCompletionRequest): void {
    const { maxMessages, maxPromptChars } = this.config.edge;
    if (request.messages.length > maxMessages) {
      throw new ProblemException(
        problem(
          400,
          "too-many-messages",
          "Too Many Messages",
          `This request has ${request.messages.length} messages; at most ${maxMessages} are accepted.`,
          { param: "messages", limit: maxMessages },
        ),
        {},
        { type: "invalid_request_error", code: "too_many_messages", param: "messages" },
      );
    }
    const chars = promptChars(request);
    if (chars > maxPromptChars) {
      throw new ProblemException(
        problem(
          413,
          "prompt-too-large",
          "Prompt Too Large",
          `This request's prompt has ${chars} characters (message text, tool-call arguments, tool definitions); at most ${maxPromptChars} are accepted.`,
          { param: "messages", limit: maxPromptChars },
        ),
        {},
        { type: "invalid_request_error", code: "prompt_too_large", param: "messages" },
      );
    }
  }
}

/** Characters of everything that is tokenized: message text and text parts, tool-call arguments, tool definitions. */
export function promptChars(request: ChatCompletionRequest): number {
  let chars = request.tools ? JSON.stringify(request.tools).length : 0;
  for (const message of request.messages) {
    if (typeof message.content === "string") chars += message.content.length;
    else if (Array.isArray(message.content))
      for (const part of message.content) if (typeof part.text === "string") chars += part.text.length;
    for (const call of message.tool_calls ?? []) chars += call.function.arguments.length + call.function.name.length;
  }
  return chars;
}
