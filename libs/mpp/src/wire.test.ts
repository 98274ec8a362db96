import { createHmac } from "node:crypto";
import { Challenge, PaymentRequest } from "mppx";
import { describe, expect, it } from "vitest";
import { prng } from "./test-support/random.js";
import {
  authParam,
  base64UrlOfString,
  canonicalize,
  constantTimeEqualStrings,
  hmacSha256Base64Url,
  serializePaymentRequest,
} from "./wire.js";

const RUNS = 3000;

/** Runs both; equal results, or both throw the same kind of error. */
function same<T>(ours: () => T, theirs: () => T) {
  let a: { value?: T; error?: unknown };
  let b: { value?: T; error?: unknown };
  try {
    a = { value: ours() };
  } catch (error) {
    a = { error };
  }
  try {
    b = { value: theirs() };
  } catch (error) {
    b = { error };
  }
  if ("error" in b) {
    expect(a.error, `mppx threw ${String(b.error)}, we returned ${String(a.value)}`).toBeDefined();
    expect((a.error as Error).constructor).toBe((b.error as Error).constructor);
    expect((a.error as Error).message).toBe((b.error as Error).message);
  } else {
    expect(a.error).toBeUndefined();
    expect(a.value).toBe(b.value);
  }
}

describe("canonical JSON + base64url (mppx PaymentRequest.serialize)", () => {
  it("matches for random nested values", () => {
    const r = prng(1);
    for (let i = 0; i < RUNS; i++) {
      const request = { value: r.json(4), [r.string(6)]: r.json(2), amount: String(r.bigint(96)) };
      same(
        () => serializePaymentRequest(request),
        () => PaymentRequest.serialize(request),
      );
    }
  });

  it("matches on the edge cases: -0, exponents, undefined members and items, empty containers", () => {
    const cases: Record<string, unknown>[] = [
      {},
      { a: -0, b: 1e21, c: 1e-7, d: [undefined, 1, undefined], e: undefined, f: { g: [] }, h: {} },
      { "\u00e9": 1, e: 2, E: 3, "": 4, "\ud83d\ude00": 5, "\uffff": 6, "\ud800": 7 },
      { nested: { z: { y: { x: [[], [{}], "\u2028"] } } } },
      { s: 'quote" backslash\\ newline\n tab\t nul\u0000 del\u007f' },
    ];
    for (const request of cases)
      same(
        () => serializePaymentRequest(request),
        () => PaymentRequest.serialize(request),
      );
  });

  it("refuses what ox refuses (non-finite numbers, bigints)", () => {
    for (const bad of [{ n: NaN }, { n: Infinity }, { n: -Infinity }, { b: 1n }, { deep: [{ b: 2n }] }]) {
      same(
        () => serializePaymentRequest(bad),
        () => PaymentRequest.serialize(bad),
      );
    }
  });

  it("canonicalizes top-level primitives like ox", () => {
    expect(canonicalize(null)).toBe("null");
    expect(canonicalize('a"b')).toBe('"a\\"b"');
    expect(canonicalize(-0)).toBe("0");
    expect(canonicalize(undefined)).toBeUndefined();
  });

  it("encodes strings (lone surrogates included) like ox's Base64.fromString", () => {
    const r = prng(2);
    for (let i = 0; i < RUNS; i++) {
      const text = r.string(64);
      // PaymentRequest.serialize of a string value = base64url(JSON.stringify(text)).
      expect(base64UrlOfString(JSON.stringify(text))).toBe(PaymentRequest.serialize(text as never));
    }
  });
});

describe("HMAC-SHA256 ids", () => {
  it("equals mppx's challenge ids for random secrets (short, 64-byte, long, non-ASCII) and inputs", () => {
    const r = prng(3);
    for (let i = 0; i < 1000; i++) {
      // (mppx issues no HMAC id for an empty secret.)
      const secretKey = `k${r.bool(0.2) ? r.string(200) : r.string(100, ["abcdef0123456789"])}`;
      const realm = r.string(30);
      const request = { amount: String(r.bigint(64)) };
      const challenge = Challenge.from({ secretKey, realm, method: "tempo", intent: "charge", request });
      const input = `${realm}|tempo|charge|${PaymentRequest.serialize(request)}|||`;
      expect(hmacSha256Base64Url(secretKey, input)).toBe(challenge.id);
      expect(hmacSha256Base64Url(secretKey, input)).toBe(
        createHmac("sha256", Buffer.from(secretKey, "utf8")).update(input, "utf8").digest("base64url"),
      );
    }
  });

  it("compares strings exactly", () => {
    expect(constantTimeEqualStrings("abc", "abc")).toBe(true);
    expect(constantTimeEqualStrings("abc", "abd")).toBe(false);
    expect(constantTimeEqualStrings("abc", "abcd")).toBe(false);
    expect(constantTimeEqualStrings("", "")).toBe(true);
    expect(constantTimeEqualStrings("é", "e")).toBe(false);
  });
});

describe("auth-param quoting (mppx Challenge.serialize)", () => {
  it("quotes random descriptions and realms exactly as mppx", () => {
    const r = prng(4);
    for (let i = 0; i < RUNS; i++) {
      const realm = r.string(20);
      const description = r.string(40);
      const challenge = { id: "x", realm, method: "tempo", intent: "charge", request: {}, description };
      same(
        () =>
          `Payment ${authParam("id", "x")}, ${authParam("realm", realm)}, method="tempo", intent="charge", request="e30", ${authParam("description", description)}`,
        () => Challenge.serialize(challenge),
      );
    }
  });

  it("refuses CR and LF like mppx", () => {
    for (const value of ["a\rb", "a\nb", "\r\n"]) {
      same(
        () => authParam("description", value),
        () => Challenge.serialize({ id: "x", realm: "r", method: "tempo", intent: "charge", request: {}, description: value }),
      );
    }
  });
});
