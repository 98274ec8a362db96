import { Inject, Injectable } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import {
  countPromptTokensOffThread,
  estimateCost,
  type ChatMessage,
  type Model,
  type ModelRegistry,
  type ToolDefinition,
} from "@worldrouter/pricing";
import { CONFIG } from "@worldrouter/runtime";
import { MODEL_REGISTRY } from "../pricing/model-registry.provider.js";
import { problem, ProblemException } from "../http/problem.js";
import type { ChatCompletionRequest } from "./chat-request.js";

export interface Quote {
  model: Model;
  promptTokens: number;
  /** estimated_cost = prompt_tokens × input_price × overhead, rounded up, at least MIN_CHARGE. */
  amount: bigint;
}

/** Prices a chat request from its prompt: the charge-intent amount the 402 challenge asks for. */
@Injectable()
export class QuoteRequest {
  constructor(
    @Inject(MODEL_REGISTRY) private readonly models: ModelRegistry,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  async quote(request: ChatCompletionRequest): Promise<Quote> {
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
    const promptTokens = await countPromptTokensOffThread(
      model,
      request.messages as unknown as ChatMessage[],
      request.tools as unknown as ToolDefinition[] | undefined,
    );
    if (promptTokens > model.contextWindow) {
      throw new ProblemException(
        problem(
          400,
          "context-length-exceeded",
          "Context Length Exceeded",
          `This request has ${promptTokens} prompt tokens; ${model.id} accepts at most ${model.contextWindow}.`,
        ),
        {},
        { type: "invalid_request_error", code: "context_length_exceeded", param: "messages" },
      );
    }
    const amount = estimateCost({ model, promptTokens: BigInt(promptTokens), minimumCharge: this.config.pricing.minimumCharge });
    return { model, promptTokens, amount };
  }
}
