import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from "node:crypto";

/**
 * Hot-path encoders for MPP's wire format, on node:crypto and Buffer instead of ox / @noble. Each one is a
 * line-for-line port of the mppx 0.11 / ox 0.14 function named in its comment and is tested byte for byte
 * against it (`wire.test.ts`, `charge-challenge.test.ts`); keep them in step when mppx is upgraded.
 */

/** ox `Json.canonicalize` (RFC 8785 as ox implements it, quirks included), without the intermediate arrays. */
export function canonicalize(value: unknown): string | undefined {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError("Cannot canonicalize non-finite number");
    return Object.is(value, -0) ? "0" : JSON.stringify(value);
  }
  if (typeof value === "bigint") throw new TypeError("Cannot canonicalize bigint");
  if (Array.isArray(value)) {
    // `[…].map(canonicalize).join(",")`: join turns an `undefined` item into an empty string.
    let out = "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ",";
      const item = canonicalize(value[i]);
      if (item !== undefined) out += item;
    }
    return `${out}]`;
  }
  if (typeof value === "object") {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).sort();
    let out = "{";
    let first = true;
    for (const key of keys) {
      const v = record[key];
      if (v === undefined) continue;
      if (!first) out += ",";
      first = false;
      // A template literal in ox: an `undefined` canonical form (function, symbol) prints as "undefined".
      out += `${JSON.stringify(key)}:${canonicalize(v)}`;
    }
    return `${out}}`;
  }
  return undefined;
}

/** ox `Base64.fromString(value, { pad: false, url: true })`: UTF-8 (lone surrogates → U+FFFD), unpadded base64url. */
export const base64UrlOfString = (value: string): string => Buffer.from(value, "utf8").toString("base64url");

/** mppx `PaymentRequest.serialize`: base64url of the canonical JSON of the request. */
export const serializePaymentRequest = (request: Record<string, unknown>): string => base64UrlOfString(canonicalize(request)!);

const keys = new Map<string, KeyObject>();
function secretKeyObject(secret: string): KeyObject {
  let key = keys.get(secret);
  if (!key) {
    if (keys.size > 16) keys.clear();
    key = createSecretKey(Buffer.from(secret, "utf8"));
    keys.set(secret, key);
  }
  return key;
}

/** mppx `Challenge.computeId`'s MAC: unpadded base64url of HMAC-SHA256(UTF-8 secret, UTF-8 input). */
export const hmacSha256Base64Url = (secret: string, input: string): string =>
  createHmac("sha256", secretKeyObject(secret)).update(input, "utf8").digest("base64url");

/** Equality of two strings without an early exit on the first differing byte (mppx `constantTimeEqual`'s result). */
export function constantTimeEqualStrings(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  // mppx compares sha-256 digests of both; equal lengths are required here, and the length is not secret.
  return x.length === y.length && timingSafeEqual(x, y);
}

const NEEDS_ESCAPE = /[\\"\u0100-\uffff]/;
const LINE_BREAK = /[\r\n]/;

/** mppx `Challenge.authParam`: `name="value"` with `\`, `"` and every UTF-16 unit above Latin-1 escaped. */
export function authParam(name: string, value: string): string {
  if (LINE_BREAK.test(value)) throw new Error("Invalid quoted-string value.");
  if (!NEEDS_ESCAPE.test(value)) return `${name}="${value}"`;
  const escaped = value
    .replace(/\\/g, "\\\\")
    .replace(/"/g, '\\"')
    .replace(/[\u0100-\uffff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return `${name}="${escaped}"`;
}
