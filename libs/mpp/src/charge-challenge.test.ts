import { BodyDigest, Challenge, Errors } from "mppx";
import { describe, expect, it } from "vitest";
import {
  bodyDigest,
  ChargeChallenger,
  chargeRequest,
  createChargeChallenge,
  serializeChallenge,
  verifyChallengeId,
  type ChargeChallengeInput,
} from "./charge-challenge.js";
import { paymentProblem, paymentRequired } from "./problems.js";
import { prng } from "./test-support/random.js";

const RUNS = 2000;

/** What createChargeChallenge did before the fast path: mppx's own Challenge.from. */
function reference(input: ChargeChallengeInput) {
  return Challenge.from({
    secretKey: input.secretKey,
    realm: input.realm,
    method: "tempo",
    intent: "charge",
    request: chargeRequest(input.terms),
    digest: input.digest,
    expires: input.expiresAt.toISOString(),
    ...(input.description ? { description: input.description } : {}),
  });
}

type Outcome = { value: string } | { error: string };
function outcome(fn: () => unknown): Outcome {
  try {
    const value = fn();
    return { value: typeof value === "string" ? value : JSON.stringify(value) };
  } catch (err) {
    return { error: `${(err as Error).constructor.name}` };
  }
}

function randomInput(r: ReturnType<typeof prng>): ChargeChallengeInput {
  const realms = ["127.0.0.1:8080", "api.worldrouter.dev", "localhost"];
  const digests = () => (r.bool(0.95) ? `sha-256=${r.base64(32)}` : r.pick(["", "sha-512=abc", "SHA-256=abc", `sha-256=${r.string(10)}`]));
  const expiresAt = () => {
    const roll = r.next();
    if (roll < 0.9) return new Date(Date.now() + r.int(-1e9, 1e10));
    if (roll < 0.95) return new Date(r.int(-62_135_596_800_000, 253_402_300_799_999)); // years 0001–9999
    return new Date(r.pick([253_402_300_800_000, 8.64e15, -62_135_596_800_001, -8.64e15, NaN])); // beyond 9999, before 0001, invalid
  };
  return {
    // Mostly hex secrets; sometimes any text (long, non-ASCII); rarely empty (mppx then refuses to build a challenge).
    secretKey: r.bool(0.8) ? r.string(64, ["0123456789abcdef"]).padEnd(32, "0") : r.bool(0.98) ? `k${r.string(120)}` : "",
    realm: r.bool(0.7) ? r.pick(realms) : r.string(24),
    terms: {
      amount: r.bigint(100),
      currency: r.hex(20),
      recipient: r.hex(20),
      chainId: r.pick([4217, 42431, 1, r.int(0, 2 ** 31)]),
      feePayer: r.bool(),
    },
    digest: digests(),
    expiresAt: expiresAt(),
    ...(r.bool(0.8)
      ? { description: r.bool(0.7) ? `$0.${r.int(0, 999999)} in USDC.e for ${r.int(1, 9999)} prompt tokens of gpt-4o-mini` : r.string(60) }
      : {}),
  };
}

describe("createChargeChallenge + serializeChallenge: byte for byte mppx's Challenge.from + Challenge.serialize", () => {
  it("gives the same challenge object (same keys, same order) and the same WWW-Authenticate header", () => {
    const r = prng(11);
    let fastPath = 0;
    for (let i = 0; i < RUNS; i++) {
      const input = randomInput(r);
      const ours = outcome(() => createChargeChallenge(input));
      const theirs = outcome(() => reference(input));
      expect(ours).toEqual(theirs);
      if ("error" in theirs) continue;
      fastPath++;
      const challenge = createChargeChallenge(input);
      expect(outcome(() => serializeChallenge(challenge))).toEqual(outcome(() => Challenge.serialize(reference(input))));
    }
    expect(fastPath).toBeGreaterThan(RUNS * 0.8);
  });

  it("round-trips through mppx's client-side parser", () => {
    const r = prng(12);
    for (let i = 0; i < 300; i++) {
      const input = {
        ...randomInput(r),
        secretKey: `s${r.string(40)}`,
        digest: bodyDigest(r.string(100)),
        expiresAt: new Date(Date.now() + 300_000),
        realm: "127.0.0.1:8080",
      };
      const challenge = createChargeChallenge(input);
      const header = serializeChallenge(challenge);
      expect(Challenge.deserialize(header)).toEqual(reference(input));
      expect(Challenge.verify(Challenge.deserialize(header), { secretKey: input.secretKey })).toBe(true);
    }
  });

  it("serializes challenges of other shapes (opaque, meta, header, no digest/expiry) like mppx", () => {
    const base = { id: "abc", realm: "r", method: "tempo", intent: "charge", request: { amount: "1" } };
    const shapes = [
      base,
      { ...base, opaque: "b3BhcXVl" },
      { ...base, meta: { a: "b" } },
      { ...base, header: "Payment-Authorization" },
      { ...base, header: "authorization", description: "d" },
      { ...base, expires: "2030-01-01T00:00:00Z" },
    ];
    for (const challenge of shapes) expect(serializeChallenge(challenge as never)).toBe(Challenge.serialize(challenge as never));
  });
});

describe("ChargeChallenger: precomputed encoding, same bytes", () => {
  it("issues the same challenge and header as mppx for random terms, amounts, digests and expiries", () => {
    const r = prng(13);
    for (let i = 0; i < 200; i++) {
      const fixed = randomInput(r);
      const challenger = new ChargeChallenger({
        secretKey: fixed.secretKey,
        realm: fixed.realm,
        currency: fixed.terms.currency,
        recipient: fixed.terms.recipient,
        chainId: fixed.terms.chainId,
        feePayer: fixed.terms.feePayer,
      });
      for (let j = 0; j < 10; j++) {
        const variable = randomInput(r);
        const input = {
          ...fixed,
          terms: { ...fixed.terms, amount: variable.terms.amount },
          digest: variable.digest,
          expiresAt: variable.expiresAt,
          description: variable.description,
        };
        const theirs = outcome(() => reference(input));
        const ours = outcome(
          () =>
            challenger.challenge({
              amount: input.terms.amount,
              digest: input.digest,
              expiresAt: input.expiresAt,
              description: input.description,
            }).challenge,
        );
        expect(ours).toEqual(theirs);
        if ("error" in theirs) continue;
        const issued = challenger.challenge({
          amount: input.terms.amount,
          digest: input.digest,
          expiresAt: input.expiresAt,
          description: input.description,
        });
        expect(outcome(() => issued.header)).toEqual(outcome(() => Challenge.serialize(reference(input))));
      }
    }
  });
});

describe("verifyChallengeId: same verdict as mppx's Challenge.verify", () => {
  it("accepts what we issued and rejects every single-field change, like mppx", () => {
    const r = prng(14);
    for (let i = 0; i < 500; i++) {
      const input = {
        ...randomInput(r),
        secretKey: `s${r.string(40)}`,
        digest: `sha-256=${r.base64(32)}`,
        expiresAt: new Date(Date.now() + 300_000),
      };
      const challenge = reference(input);
      const other = `${input.secretKey}x`;
      expect(verifyChallengeId(challenge, input.secretKey)).toBe(true);
      expect(verifyChallengeId(challenge, other)).toBe(Challenge.verify(challenge, { secretKey: other }));
      const tampered = [
        { ...challenge, id: challenge.id.slice(0, -1) + (challenge.id.endsWith("A") ? "B" : "A") },
        { ...challenge, realm: `${challenge.realm}.` },
        { ...challenge, intent: "session" },
        { ...challenge, method: "stripe" },
        { ...challenge, request: { ...challenge.request, amount: `${challenge.request.amount}0` } },
        { ...challenge, request: { ...challenge.request, extra: r.json(2) } },
        { ...challenge, expires: undefined },
        { ...challenge, digest: undefined },
        { ...challenge, description: "descriptions are not bound" },
        { ...challenge, opaque: "b3BhcXVl" },
        { ...challenge, header: "Payment-Authorization" },
      ];
      for (const t of tampered)
        expect(verifyChallengeId(t as never, input.secretKey)).toBe(Challenge.verify(t as never, { secretKey: input.secretKey }));
    }
  });

  it("agrees on challenges parsed from random headers", () => {
    const r = prng(15);
    for (let i = 0; i < 500; i++) {
      const input = {
        ...randomInput(r),
        secretKey: `s${r.string(40)}`,
        digest: `sha-256=${r.base64(32)}`,
        expiresAt: new Date(Date.now() + 300_000),
      };
      const parsed = Challenge.deserialize(Challenge.serialize(reference(input)));
      expect(verifyChallengeId(parsed, input.secretKey)).toBe(true);
      expect(verifyChallengeId(parsed, r.string(40))).toBe(false);
    }
  });
});

describe("bodyDigest and paymentRequired", () => {
  it("bodyDigest equals mppx's BodyDigest.compute", () => {
    const r = prng(16);
    for (let i = 0; i < 500; i++) {
      const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: r.string(200) }] });
      expect(bodyDigest(body)).toBe(BodyDigest.compute(body));
      expect(bodyDigest(Buffer.from(body))).toBe(BodyDigest.compute(body));
    }
  });

  it("paymentRequired equals the problem of mppx's PaymentRequiredError", () => {
    const r = prng(17);
    for (const detail of [
      "",
      "$0.000012 in USDC.e for 12 prompt tokens of gpt-4o-mini",
      ...Array.from({ length: 500 }, () => r.string(80)),
    ]) {
      expect(JSON.stringify(paymentRequired(detail))).toBe(
        JSON.stringify(paymentProblem(new Errors.PaymentRequiredError({ description: detail }))),
      );
    }
  });
});
