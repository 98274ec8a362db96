import { createHash } from "node:crypto";
import { Challenge } from "mppx";
import { authParam, canonicalize, constantTimeEqualStrings, hmacSha256Base64Url, serializePaymentRequest } from "./wire.js";

type Hex = `0x${string}`;

/** What a charge asks for: the tempo `charge` request (amounts in token base units). */
export interface ChargeTerms {
  amount: bigint;
  currency: Hex;
  recipient: Hex;
  chainId: number;
  /** We sponsor gas: the client sends a fee-payer envelope that the verifier co-signs. */
  feePayer: boolean;
}

export interface ChargeChallengeInput {
  secretKey: string;
  realm: string;
  terms: ChargeTerms;
  /** `sha-256=…` of the exact request body: a credential for one body cannot pay for another. */
  digest: string;
  expiresAt: Date;
  description?: string;
}

export type ChargeChallenge = Challenge.Challenge;

/** The tempo charge `request` object exactly as mppx encodes it on the wire. */
export function chargeRequest(terms: ChargeTerms): {
  amount: string;
  currency: Hex;
  methodDetails: { chainId: number; feePayer?: true };
  recipient: Hex;
} {
  // Literal objects (not spreads): this runs on every 402 and spreads of conditional objects are slow.
  return {
    amount: terms.amount.toString(),
    currency: terms.currency,
    methodDetails: terms.feePayer ? { chainId: terms.chainId, feePayer: true } : { chainId: terms.chainId },
    recipient: terms.recipient,
  };
}

/**
 * Inputs the fast path handles exactly like mppx's `Challenge.from` (whose zod schema accepts them as they
 * are): anything else — an odd digest, an expiry outside years 0000–9999 — goes through mppx itself.
 */
const DIGEST = /^sha-256=/;
const ISO_EXPIRY = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** The challenge object mppx's `Challenge.from` returns (its schema's key order), built without re-validation. */
function challengeObject(
  id: string,
  realm: string,
  request: Record<string, unknown>,
  description: string | undefined,
  digest: string,
  expires: string,
): ChargeChallenge {
  return description
    ? { description, digest, expires, id, intent: "charge", method: "tempo", realm, request }
    : { digest, expires, id, intent: "charge", method: "tempo", realm, request };
}

/** `realm|method|intent|request|expires|digest|opaque` — mppx's `idBindingInput` for a challenge without header/opaque/meta. */
const bindingInput = (realm: string, encodedRequest: string, expires: string, digest: string) =>
  `${realm}|tempo|charge|${encodedRequest}|${expires}|${digest}|`;

/** Stateless challenge: its id is an HMAC over every field (mppx's binding), so nothing is stored. */
export function createChargeChallenge(input: ChargeChallengeInput): ChargeChallenge {
  const expires = input.expiresAt.toISOString();
  const request = chargeRequest(input.terms);
  const description = input.description ? input.description : undefined;
  if (!input.secretKey || !DIGEST.test(input.digest) || !ISO_EXPIRY.test(expires)) {
    return Challenge.from({
      secretKey: input.secretKey,
      realm: input.realm,
      method: "tempo",
      intent: "charge",
      request,
      digest: input.digest,
      expires,
      ...(description ? { description } : {}),
    }) as ChargeChallenge;
  }
  const id = hmacSha256Base64Url(input.secretKey, bindingInput(input.realm, serializePaymentRequest(request), expires, input.digest));
  return challengeObject(id, input.realm, request, description, input.digest, expires);
}

/** `WWW-Authenticate` value for a challenge: byte-identical to mppx's `Challenge.serialize`. */
export function serializeChallenge(challenge: ChargeChallenge): string {
  // Rare shapes (a credential header other than Authorization, opaque/meta): mppx's own serializer.
  if (challenge.header !== undefined || challenge.opaque !== undefined || challenge.meta !== undefined)
    return Challenge.serialize(challenge);
  let header = `Payment ${authParam("id", challenge.id)}, ${authParam("realm", challenge.realm)}, ${authParam("method", challenge.method)}, ${authParam("intent", challenge.intent)}, ${authParam("request", serializePaymentRequest(challenge.request))}`;
  if (challenge.description !== undefined) header += `, ${authParam("description", challenge.description)}`;
  if (challenge.digest !== undefined) header += `, ${authParam("digest", challenge.digest)}`;
  if (challenge.expires !== undefined) header += `, ${authParam("expires", challenge.expires)}`;
  return header;
}

/**
 * mppx's `Challenge.verify(challenge, { secretKey })` — is this id the HMAC we would have issued for every
 * other field? — with node:crypto. Challenges carrying a credential header, opaque or meta go through mppx.
 */
export function verifyChallengeId(challenge: Challenge.Challenge, secretKey: string): boolean {
  if (challenge.header !== undefined || challenge.opaque !== undefined || challenge.meta !== undefined)
    return Challenge.verify(challenge, { secretKey });
  const input = `${challenge.realm}|${challenge.method}|${challenge.intent}|${serializePaymentRequest(challenge.request)}|${challenge.expires ?? ""}|${challenge.digest ?? ""}|`;
  return constantTimeEqualStrings(challenge.id, hmacSha256Base64Url(secretKey, input));
}

export interface ChargeChallengerOptions {
  secretKey: string;
  realm: string;
  currency: Hex;
  recipient: Hex;
  chainId: number;
  feePayer: boolean;
}

export interface IssuedChargeChallenge {
  challenge: ChargeChallenge;
  /** Its `WWW-Authenticate` value. */
  header: string;
}

/**
 * Issues charge challenges for one fixed payee/currency/chain/realm (the gateway's case): everything that does
 * not depend on the request is encoded once, so a challenge costs one HMAC, one base64 of ~190 bytes and a few
 * string joins. Same bytes as `createChargeChallenge` + `serializeChallenge` (and mppx's `Challenge.from` +
 * `Challenge.serialize`).
 */
export class ChargeChallenger {
  private readonly requestHead: string;
  private readonly requestTail: string;
  private readonly headerHead: string;
  private readonly realm: string;
  private readonly secretKey: string;
  private readonly terms: Omit<ChargeTerms, "amount">;

  constructor(options: ChargeChallengerOptions) {
    // Canonical JSON puts `amount` first ("amount" < "currency" < "methodDetails" < "recipient"), so the
    // encoded request is `{"amount":"` + digits + the same tail every time.
    const canonical = canonicalize({ ...chargeRequest({ ...options, amount: 0n }), amount: "" })!;
    const at = canonical.indexOf('""');
    this.requestHead = canonical.slice(0, at + 1);
    this.requestTail = canonical.slice(at + 1);
    this.realm = options.realm;
    this.secretKey = options.secretKey;
    this.terms = { currency: options.currency, recipient: options.recipient, chainId: options.chainId, feePayer: options.feePayer };
    this.headerHead = `${authParam("realm", options.realm)}, method="tempo", intent="charge", request="`;
  }

  challenge(input: { amount: bigint; digest: string; expiresAt: Date; description?: string }): IssuedChargeChallenge {
    const expires = input.expiresAt.toISOString();
    if (!this.secretKey || !DIGEST.test(input.digest) || !ISO_EXPIRY.test(expires)) {
      const challenge = createChargeChallenge({
        secretKey: this.secretKey,
        realm: this.realm,
        terms: { ...this.terms, amount: input.amount },
        digest: input.digest,
        expiresAt: input.expiresAt,
        description: input.description,
      });
      return { challenge, header: serializeChallenge(challenge) };
    }
    const amount = input.amount.toString();
    const encoded = Buffer.from(`${this.requestHead}${amount}${this.requestTail}`, "utf8").toString("base64url");
    const id = hmacSha256Base64Url(this.secretKey, bindingInput(this.realm, encoded, expires, input.digest));
    const description = input.description ? input.description : undefined;
    const challenge = challengeObject(
      id,
      this.realm,
      chargeRequest({ ...this.terms, amount: input.amount }),
      description,
      input.digest,
      expires,
    );
    let header = `Payment ${authParam("id", id)}, ${this.headerHead}${encoded}"`;
    if (description !== undefined) header += `, ${authParam("description", description)}`;
    header += `, ${authParam("digest", input.digest)}, expires="${expires}"`;
    return { challenge, header };
  }
}

/** RFC 9530-style body digest, byte-identical to mppx's `BodyDigest.compute(string)`. */
export function bodyDigest(body: Buffer | string): string {
  return `sha-256=${createHash("sha256").update(body).digest("base64")}`;
}
