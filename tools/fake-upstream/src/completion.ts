/**
 * What one choice of a fake completion contains, independent of the wire format: content fragments (streamed as
 * chunks), an optional tool call, how it ended, and its token count.
 */
import { countTextTokens, type JsonSchema, type ToolDefinition } from "@worldrouter/pricing";
import { fragments, jsonAnswer, random, textPieces, valueForSchema } from "./generate.js";

export type CompletionEnd = "end" | "stop_sequence" | "length" | "tool";

export interface ToolCallPlan {
  readonly name: string;
  readonly arguments: string;
  readonly fragments: readonly string[];
}

export interface CompletionPlan {
  /** Content in streaming order; in text mode each fragment is exactly one token. */
  readonly content: readonly string[];
  readonly toolCall: ToolCallPlan | null;
  readonly end: CompletionEnd;
  readonly stopSequence: string | null;
  readonly tokens: number;
}

export type CompletionMode =
  | { readonly kind: "text" }
  | { readonly kind: "json"; readonly schema?: JsonSchema }
  /** `preamble`: a short sentence before the call, as Claude writes when it chooses a tool itself. */
  | { readonly kind: "tool"; readonly tool: ToolDefinition; readonly preamble: boolean };

export interface CompletionRequest {
  readonly seed: number;
  readonly mode: CompletionMode;
  /** Natural length in tokens. */
  readonly tokens: number;
  readonly maxTokens: number | undefined;
  readonly stop: readonly string[];
}

const PREAMBLE_TOKENS = 8;

export function planCompletion({ seed, mode, tokens, maxTokens = Number.MAX_SAFE_INTEGER, stop }: CompletionRequest): CompletionPlan {
  switch (mode.kind) {
    case "text":
      return planText(textPieces(seed, tokens), maxTokens, stop);
    case "json": {
      const text = mode.schema ? JSON.stringify(valueForSchema(mode.schema, random(seed))) : jsonAnswer(seed, tokens);
      return planStructured(text, maxTokens, stop);
    }
    case "tool": {
      const preamble = mode.preamble ? planText(textPieces(seed, PREAMBLE_TOKENS), maxTokens, []) : null;
      const budget = maxTokens - (preamble?.tokens ?? 0);
      const args = JSON.stringify(valueForSchema(mode.tool.function.parameters ?? { type: "object" }, random(seed ^ 0x5bd1e995)));
      const name = mode.tool.function.name;
      const nameTokens = countTextTokens(name);
      const kept = truncateToTokens(fragments(args), budget - nameTokens);
      const complete = kept.text === args;
      return {
        content: preamble?.content ?? [],
        toolCall: budget > nameTokens ? { name, arguments: kept.text, fragments: kept.fragments } : null,
        end: complete && budget > nameTokens ? "tool" : "length",
        stopSequence: null,
        tokens: (preamble?.tokens ?? 0) + (budget > nameTokens ? nameTokens + kept.tokens : 0),
      };
    }
  }
}

function planText(pieces: string[], maxTokens: number, stop: readonly string[]): CompletionPlan {
  const text = pieces.join("");
  const cut = earliestStop(text, stop);
  if (cut) {
    // Whole pieces before the stop sequence, then the part of the piece it starts in.
    let offset = 0;
    let whole = 0;
    while (whole < pieces.length && offset + pieces[whole]!.length <= cut.index) offset += pieces[whole++]!.length;
    const partial = text.slice(offset, cut.index);
    const tokens = whole + countTextTokens(partial);
    if (tokens <= maxTokens) {
      const content = pieces.slice(0, whole);
      if (partial) content.push(partial);
      return { content, toolCall: null, end: "stop_sequence", stopSequence: cut.sequence, tokens };
    }
  }
  if (pieces.length > maxTokens)
    return { content: pieces.slice(0, maxTokens), toolCall: null, end: "length", stopSequence: null, tokens: maxTokens };
  return { content: pieces, toolCall: null, end: "end", stopSequence: null, tokens: pieces.length };
}

function planStructured(text: string, maxTokens: number, stop: readonly string[]): CompletionPlan {
  const cut = earliestStop(text, stop);
  const emitted = cut ? text.slice(0, cut.index) : text;
  const kept = truncateToTokens(fragments(emitted), maxTokens);
  const truncated = kept.text !== emitted;
  return {
    content: kept.fragments,
    toolCall: null,
    end: truncated ? "length" : cut ? "stop_sequence" : "end",
    stopSequence: truncated || !cut ? null : cut.sequence,
    tokens: kept.tokens,
  };
}

/** The longest prefix of whole fragments whose real token count fits the budget. */
function truncateToTokens(parts: string[], budget: number): { fragments: string[]; text: string; tokens: number } {
  let text = parts.join("");
  let tokens = countTextTokens(text);
  if (tokens <= budget) return { fragments: parts, text, tokens };
  if (budget <= 0) return { fragments: [], text: "", tokens: 0 };
  // Fragments are finer than tokens, so cutting proportionally lands at or under the budget; trim the rest.
  let keep = Math.floor((parts.length * budget) / tokens);
  for (;;) {
    text = parts.slice(0, keep).join("");
    tokens = countTextTokens(text);
    if (tokens <= budget || keep === 0) return { fragments: parts.slice(0, keep), text, tokens };
    keep--;
  }
}

function earliestStop(text: string, stop: readonly string[]): { index: number; sequence: string } | null {
  let best: { index: number; sequence: string } | null = null;
  for (const sequence of stop) {
    if (sequence.length === 0) continue;
    const index = text.indexOf(sequence);
    if (index >= 0 && (best === null || index < best.index)) best = { index, sequence };
  }
  return best;
}

/** Joins consecutive fragments into streamed chunks of `size` fragments. */
export function chunksOf(parts: readonly string[], size: number): readonly string[] {
  if (size === 1) return parts;
  const out: string[] = [];
  for (let i = 0; i < parts.length; i += size) out.push(parts.slice(i, i + size).join(""));
  return out;
}
