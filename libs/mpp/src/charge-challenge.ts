import { createHash } from "node:crypto";
import { Challenge } from "mppx";

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
export function chargeRequest(terms: ChargeTerms) {
  return {
    amount: terms.amount.toString(),
    currency: terms.currency,
    methodDetails: { chainId: terms.chainId, ...(terms.feePayer ? { feePayer: true } : {}) },
    recipient: terms.recipient,
  };
}

/** Stateless challenge: its id is an HMAC over every field (mppx's binding), so nothing is stored. */
export function createChargeChallenge(input: ChargeChallengeInput): ChargeChallenge {
  return Challenge.from({
    secretKey: input.secretKey,
    realm: input.realm,
    method: "tempo",
    intent: "charge",
    request: chargeRequest(input.terms),
    digest: input.digest,
    expires: input.expiresAt.toISOString(),
    ...(input.description ? { description: input.description } : {}),
  }) as ChargeChallenge;
}

/** `WWW-Authenticate` value for a challenge. */
export const serializeChallenge = (challenge: ChargeChallenge): string => Challenge.serialize(challenge);

/** RFC 9530-style body digest, byte-identical to mppx's `BodyDigest.compute(string)`. */
export function bodyDigest(body: Buffer | string): string {
  return `sha-256=${createHash("sha256").update(body).digest("base64")}`;
}
