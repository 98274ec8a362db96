import type { Config } from "@worldrouter/config";
import { PaymentErrors, verifyChallengeId } from "@worldrouter/mpp";
import { Credential, Expires, type Challenge } from "mppx";
import { Methods, Session } from "mppx/tempo";
import type { ChannelDescriptor } from "./channels.repository.js";

type Hex = `0x${string}`;

/** Largest amount a channel's live balance (Redis, Lua doubles) holds exactly: opens with more are refused. */
export const MAX_CHANNEL_AMOUNT = BigInt(Number.MAX_SAFE_INTEGER);
const MAX_UINT96 = (1n << 96n) - 1n;
export const ZERO_ADDRESS: Hex = "0x0000000000000000000000000000000000000000";

export type SessionPayload = ReturnType<typeof Methods.session.schema.credential.payload.parse>;

/**
 * A session credential, checked against the challenge it answers: our HMAC, realm, tempo/session, not expired, and
 * the terms we issue (token, payee, chain, escrow). Pure: no I/O.
 */
export function parseSessionCredential(authorization: string, config: Config): { challenge: Challenge.Challenge; payload: SessionPayload } {
  let credential: ReturnType<typeof Credential.deserialize>;
  try {
    credential = Credential.deserialize(authorization);
  } catch (err) {
    throw new PaymentErrors.MalformedCredentialError({ reason: (err as Error).message });
  }
  const challenge = credential.challenge;
  if (!verifyChallengeId(challenge, config.mpp.secretKey))
    throw new PaymentErrors.InvalidChallengeError({ id: challenge.id, reason: "challenge was not issued by this server (HMAC mismatch)" });
  if (challenge.realm !== config.gateway.realm || challenge.method !== "tempo" || challenge.intent !== "session")
    throw new PaymentErrors.InvalidChallengeError({
      id: challenge.id,
      reason: `expected a tempo session challenge for realm ${config.gateway.realm}`,
    });
  Expires.assert(challenge.expires, challenge.id);
  const request = challenge.request as {
    currency?: string;
    recipient?: string;
    methodDetails?: { chainId?: number; escrowContract?: string };
  };
  if (
    request.currency?.toLowerCase() !== config.chain.token ||
    request.recipient?.toLowerCase() !== config.chain.payee ||
    request.methodDetails?.chainId !== config.chain.chainId ||
    request.methodDetails?.escrowContract?.toLowerCase() !== config.chain.escrow
  )
    throw new PaymentErrors.InvalidChallengeError({ id: challenge.id, reason: "challenge terms are not this server's session terms" });
  const payload = Methods.session.schema.credential.payload.safeParse(credential.payload);
  if (!payload.success)
    throw new PaymentErrors.InvalidPayloadError({ reason: payload.error.issues[0]?.message ?? "invalid session payload" });
  const cumulative = "cumulativeAmount" in payload.data ? BigInt(payload.data.cumulativeAmount) : 0n;
  if (cumulative > MAX_UINT96) throw new PaymentErrors.InvalidPayloadError({ reason: "cumulativeAmount exceeds uint96" });
  return { challenge, payload: payload.data };
}

/** Lowercases a descriptor from the wire (mppx sends checksummed addresses). */
export function normalizeDescriptor(descriptor: unknown): ChannelDescriptor | undefined {
  if (!descriptor || typeof descriptor !== "object") return undefined;
  const d = descriptor as Record<string, unknown>;
  const fields = ["payer", "payee", "operator", "token", "salt", "authorizedSigner", "expiringNonceHash"] as const;
  const out: Record<string, Hex> = {};
  for (const field of fields) {
    const value = d[field];
    if (typeof value !== "string" || !/^0x[0-9a-fA-F]+$/.test(value)) return undefined;
    out[field] = value.toLowerCase() as Hex;
  }
  return out as unknown as ChannelDescriptor;
}

export function channelIdOf(descriptor: ChannelDescriptor, config: Config): Hex {
  return Session.Precompile.Channel.computeId({
    ...descriptor,
    chainId: config.chain.chainId,
    escrow: config.chain.escrow,
  }).toLowerCase() as Hex;
}

/** Who may sign the channel's vouchers: its authorised signer, else the payer. */
export function voucherSignerOf(descriptor: Pick<ChannelDescriptor, "payer" | "authorizedSigner">): Hex {
  return descriptor.authorizedSigner === ZERO_ADDRESS ? descriptor.payer : descriptor.authorizedSigner;
}
