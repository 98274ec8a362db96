/**
 * Prompt token counting for OpenAI chat requests, exact for o200k_base models up to the documented approximations
 * (tools, images), approximate for Anthropic models.
 *
 * OpenAI (o200k_base: gpt-4o, gpt-4.1, gpt-5.x, codex, o-series), per OpenAI's cookbook "How to count tokens with
 * tiktoken": 3 tokens per message + the tokens of its role, content and name, +1 when a name is set, + 3 that
 * prime the reply. Approximations:
 * - tools: the cookbook's gpt-4o rule (7 per function + "name:description", 3 + 3 per property + "key:type:description",
 *   enum items 3 each (−3 per enum), 12 at the end); nested object/array schemas add the tokens of their JSON.
 * - assistant tool calls: name + arguments + 3 per call.
 * - image parts: fixed, 85 tokens at detail "low", else 765 (a 1024×1024 image at high detail: 85 + 4 tiles × 170).
 *   Any other non-text part (audio, file) is estimated like an image.
 *
 * Anthropic models: Claude's tokenizer is not public. We count the same text with o200k_base and multiply by 5/4,
 * rounded up: Claude 3/4 tokenizers produce noticeably more tokens than o200k_base for the same English text and
 * code (roughly 10–30% in published comparisons); erring high keeps the charge-intent estimate on the safe side.
 * Tools add their JSON × 5/4 plus Anthropic's documented tool-use system prompt (346 tokens); images are fixed at
 * 1600 tokens (Anthropic's ≈ width × height / 750 for a ~1.15 megapixel image, the size it resizes large images to).
 * Real usage from the provider replaces every estimate once the response arrives.
 */
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import type { TokenizerId } from "./model.js";

export interface ChatContentPart {
  readonly type: string;
  readonly text?: string;
  readonly refusal?: string;
  readonly image_url?: { readonly url: string; readonly detail?: string };
}

export interface ChatToolCall {
  readonly id?: string;
  readonly type?: string;
  readonly function: { readonly name: string; readonly arguments: string };
}

/** The parts of an OpenAI chat message that reach the model. */
export interface ChatMessage {
  readonly role: string;
  readonly content?: string | readonly ChatContentPart[] | null;
  readonly name?: string;
  readonly tool_calls?: readonly ChatToolCall[];
  readonly tool_call_id?: string;
}

export interface JsonSchema {
  readonly type?: string | readonly string[];
  readonly description?: string;
  readonly enum?: readonly unknown[];
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly items?: JsonSchema;
  readonly [keyword: string]: unknown;
}

export interface ToolDefinition {
  readonly type: string;
  readonly function: { readonly name: string; readonly description?: string; readonly parameters?: JsonSchema };
}

export interface TokenizedModel {
  readonly tokenizer: TokenizerId;
}

const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
const REPLY_PRIMING_TOKENS = 3;
const TOKENS_PER_TOOL_CALL = 3;
const TOOL = { functionStart: 7, propertiesStart: 3, property: 3, enumStart: -3, enumItem: 3, end: 12 } as const;
const IMAGE_TOKENS = { openai: { low: 85, other: 765 }, anthropic: 1600 } as const;
const ANTHROPIC_TOOL_SYSTEM_PROMPT_TOKENS = 346;
const ANTHROPIC_FACTOR = { numerator: 5, denominator: 4 } as const;

// User text is counted as text: "<|endoftext|>" in a prompt is 7 ordinary tokens, never a special token or an error.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** o200k_base token count of a string. */
export function countTextTokens(text: string): number {
  return text.length === 0 ? 0 : countTokens(text, PLAIN_TEXT);
}

/**
 * What a prompt count is made of: strings to tokenize (the expensive part, which may run on another thread) and
 * fixed amounts. `scaledFixed` is multiplied with the text by the Anthropic factor; `unscaledFixed` is not.
 */
export interface PromptCountPlan {
  readonly tokenizer: TokenizerId;
  readonly texts: string[];
  readonly scaledFixed: number;
  readonly unscaledFixed: number;
}

export function planPromptCount(
  model: TokenizedModel,
  messages: readonly ChatMessage[],
  tools: readonly ToolDefinition[] = [],
): PromptCountPlan {
  const anthropic = model.tokenizer === "anthropic-approx";
  const texts: string[] = [];
  let scaledFixed = REPLY_PRIMING_TOKENS;
  let unscaledFixed = 0;

  for (const message of messages) {
    scaledFixed += TOKENS_PER_MESSAGE;
    texts.push(message.role);
    if (message.name) {
      texts.push(message.name);
      scaledFixed += TOKENS_PER_NAME;
    }
    const { content } = message;
    if (typeof content === "string") texts.push(content);
    else if (content) {
      for (const part of content) {
        const text = part.text ?? part.refusal;
        if (text !== undefined) texts.push(text);
        else if (anthropic) unscaledFixed += IMAGE_TOKENS.anthropic;
        else unscaledFixed += part.image_url?.detail === "low" ? IMAGE_TOKENS.openai.low : IMAGE_TOKENS.openai.other;
      }
    }
    for (const call of message.tool_calls ?? []) {
      texts.push(call.function.name, call.function.arguments);
      scaledFixed += TOKENS_PER_TOOL_CALL;
    }
  }

  if (tools.length > 0) {
    if (anthropic) {
      texts.push(JSON.stringify(tools.map((tool) => tool.function)));
      unscaledFixed += ANTHROPIC_TOOL_SYSTEM_PROMPT_TOKENS;
    } else {
      scaledFixed += planOpenAiTools(tools, texts);
    }
  }
  return { tokenizer: model.tokenizer, texts, scaledFixed, unscaledFixed };
}

/** Pushes the texts of the cookbook's tool rule and returns its fixed tokens (which may net negative per enum). */
function planOpenAiTools(tools: readonly ToolDefinition[], texts: string[]): number {
  let fixed = TOOL.end;
  for (const { function: fn } of tools) {
    fixed += TOOL.functionStart;
    texts.push(`${fn.name}:${withoutFinalPeriod(fn.description ?? "")}`);
    const properties = Object.entries(fn.parameters?.properties ?? {});
    if (properties.length === 0) continue;
    fixed += TOOL.propertiesStart;
    for (const [key, property] of properties) {
      fixed += TOOL.property;
      if (property.enum) {
        fixed += TOOL.enumStart;
        for (const item of property.enum) {
          fixed += TOOL.enumItem;
          texts.push(String(item));
        }
      }
      const type = Array.isArray(property.type) ? property.type.join("|") : (property.type ?? "");
      texts.push(`${key}:${type}:${withoutFinalPeriod(property.description ?? "")}`);
      if (property.properties || property.items) texts.push(JSON.stringify({ properties: property.properties, items: property.items }));
    }
  }
  return fixed;
}

function withoutFinalPeriod(text: string): string {
  return text.endsWith(".") ? text.slice(0, -1) : text;
}

/** Combines a plan with the token count of its texts. */
export function completePromptCount(plan: PromptCountPlan, textTokens: number): number {
  const scaled = textTokens + plan.scaledFixed;
  if (plan.tokenizer === "o200k_base") return scaled + plan.unscaledFixed;
  return Math.ceil((scaled * ANTHROPIC_FACTOR.numerator) / ANTHROPIC_FACTOR.denominator) + plan.unscaledFixed;
}

/** Prompt tokens of an OpenAI chat request, on the calling thread. See countPromptTokensOffThread for large prompts. */
export function countPromptTokens(model: TokenizedModel, messages: readonly ChatMessage[], tools?: readonly ToolDefinition[]): number {
  const plan = planPromptCount(model, messages, tools);
  let textTokens = 0;
  for (const text of plan.texts) textTokens += countTextTokens(text);
  return completePromptCount(plan, textTokens);
}

/** Completion tokens of a generated text, for when the provider reports no usage. */
export function countCompletionTokens(model: TokenizedModel, text: string): number {
  const tokens = countTextTokens(text);
  return model.tokenizer === "o200k_base" ? tokens : Math.ceil((tokens * ANTHROPIC_FACTOR.numerator) / ANTHROPIC_FACTOR.denominator);
}
