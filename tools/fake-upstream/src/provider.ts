/** What the OpenAI and Anthropic handlers share: the exchange, prompt counting, response ids. */
import { randomBytes } from "node:crypto";
import type { ChatMessage, TokenizerId, ToolDefinition } from "@worldrouter/pricing";
import type { Exchange } from "./exchange.js";

export interface ProviderContext {
  readonly exchange: Exchange;
  /**
   * Prompt tokens as WorldRouter counts them: the catalogue model's tokenizer, else `fallback` (the endpoint's
   * provider). Cached by content, counted off-thread when large.
   */
  countPrompt(
    model: string,
    fallback: TokenizerId,
    messages: readonly ChatMessage[],
    tools: readonly ToolDefinition[] | undefined,
    messagesJson: string,
  ): Promise<number>;
}

const ID_PREFIX = randomBytes(6).toString("hex");
let idCounter = 0;

/** Unique per process and request (real ids are unique even for identical requests). */
export function nextId(prefix: string): string {
  return `${prefix}fake${ID_PREFIX}${(idCounter++).toString(36)}`;
}
