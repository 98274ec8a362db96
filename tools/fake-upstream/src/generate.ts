/**
 * Deterministic completions. The text is drawn from a vocabulary in which every piece is exactly one o200k_base
 * token and pieces never merge, so a completion of N pieces is N tokens by the real tokenizer without counting it
 * (generate.test.ts checks this) and streaming chunks are precomputed strings.
 */
import { createHash } from "node:crypto";
import type { JsonSchema } from "@worldrouter/pricing";

const OPENERS = ["Here", "Sure", "The", "This", "Yes", "Certainly", "Okay", "Well", "Indeed", "So"];
const WORDS = (
  "the of and to in is that for it as was with be by on not this are or from at which but have an they you were one " +
  "all we their has would when if so no will can more about out them some could into than other what time only new " +
  "may first then do any like these its over such our after most also made many before must through back years " +
  "where much your way well down should because each just those people how too little state good very make world " +
  "still own see work long get here between both life being under never day same another know while last might great " +
  "old year off come since against go came right used take three request payment channel voucher token model stream " +
  "gateway settlement ledger balance receipt signature function return value answer data system network server " +
  "client message response simple quick clear short result example test input output river mountain garden window " +
  "paper music light water story friend city morning evening question number table chapter"
).split(" ");

/** Every piece a text completion can contain; each is one token. */
export const OPENER_PIECES: readonly string[] = OPENERS;
export const WORD_PIECES: readonly string[] = WORDS.map((word) => ` ${word}`);
export const PUNCTUATION_PIECES: readonly string[] = [".", ","];

/** A wire-format string for every text piece, built once so streaming a completion only concatenates. */
export function precomputed(render: (piece: string) => string): (text: string) => string {
  const table = new Map([...OPENER_PIECES, ...WORD_PIECES, ...PUNCTUATION_PIECES].map((piece) => [piece, render(piece)]));
  return (text) => table.get(text) ?? render(text);
}

/** 32-bit seed of a request: same model and messages → same completion. */
export function seedOf(...parts: string[]): number {
  const hash = createHash("sha1");
  for (const part of parts) hash.update(part).update("\0");
  return hash.digest().readUInt32BE(0);
}

/** mulberry32: small, fast, good enough to pick words. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(next: () => number, items: readonly T[]): T => items[Math.floor(next() * items.length)]!;

/** `tokens` pieces of prose: an opener, words, a comma or period now and then, a period at the end. */
export function textPieces(seed: number, tokens: number): string[] {
  const next = random(seed);
  const pieces: string[] = [];
  if (tokens === 0) return pieces;
  pieces.push(pick(next, OPENER_PIECES));
  let sinceBreak = 1;
  while (pieces.length < tokens - 1) {
    if (sinceBreak >= 4 && next() < 0.15) {
      pieces.push(next() < 0.6 ? "." : ",");
      sinceBreak = 0;
    } else {
      pieces.push(pick(next, WORD_PIECES));
      sinceBreak++;
    }
  }
  // A period right after a comma would merge with it into one token.
  if (pieces.length < tokens) pieces.push(sinceBreak === 0 ? pick(next, WORD_PIECES) : ".");
  return pieces;
}

/** A short phrase without a leading space, for string values in generated JSON. */
function phrase(next: () => number, words: number): string {
  let out = pick(next, OPENER_PIECES);
  for (let i = 1; i < words; i++) out += pick(next, WORD_PIECES);
  return out;
}

/** A value that satisfies the common JSON Schema keywords (type, enum, const, properties, items, anyOf/oneOf, bounds). */
export function valueForSchema(schema: JsonSchema | undefined, next: () => number, depth = 0): unknown {
  if (!schema || depth > 6) return phrase(next, 3);
  if ("const" in schema) return schema.const;
  if (schema.enum && schema.enum.length > 0) return pick(next, schema.enum);
  const variants = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(variants) && variants.length > 0) return valueForSchema(variants[0], next, depth + 1);
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const type = types.find((t) => t !== "null") ?? (schema.properties ? "object" : schema.items ? "array" : "string");
  switch (type) {
    case "object": {
      const value: Record<string, unknown> = {};
      for (const [key, property] of Object.entries(schema.properties ?? {})) value[key] = valueForSchema(property, next, depth + 1);
      return value;
    }
    case "array": {
      const min = typeof schema.minItems === "number" ? schema.minItems : 1;
      return Array.from({ length: Math.max(1, min) }, () => valueForSchema(schema.items, next, depth + 1));
    }
    case "integer":
    case "number": {
      const min = typeof schema.minimum === "number" ? schema.minimum : 0;
      const max = typeof schema.maximum === "number" ? schema.maximum : min + 100;
      return Math.ceil(min) + Math.floor(next() * (Math.floor(max) - Math.ceil(min) + 1));
    }
    case "boolean":
      return next() < 0.5;
    case "null":
      return null;
    default:
      return phrase(next, 2 + Math.floor(next() * 3));
  }
}

/** JSON text for response_format json_object: an answer whose string holds about `tokens` tokens. */
export function jsonAnswer(seed: number, tokens: number): string {
  return JSON.stringify({ answer: textPieces(seed, Math.max(1, tokens - 6)).join("") });
}

const FRAGMENT = /\s*[A-Za-z]+|\s*\d+|\s*[^\sA-Za-z\d]/g;

/** Token-sized slices of a JSON text, for streaming arguments and JSON content the way providers do. */
export function fragments(text: string): string[] {
  return text.match(FRAGMENT) ?? [];
}
