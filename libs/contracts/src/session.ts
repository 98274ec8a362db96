import { z } from "zod";
import { Address, BaseUnits, Hash32, RequestId } from "./primitives.js";
import { PaymentProblem } from "./rpc.js";

/**
 * Session intent (payment channels) between the gateway and payment-verifier. One RPC pattern serves every session
 * credential action (open, voucher, topUp, close): the verifier decides by the credential's `action`.
 */
export const SessionCredentialRequest = z.object({
  requestId: RequestId,
  /** The raw `Authorization` header value (`Payment <base64url>`). */
  authorization: z.string().max(64 * 1024),
  /** A bodiless management call (HEAD, or POST without a body): vouchers, top-ups and closes only, nothing is served. */
  management: z.boolean(),
});
export type SessionCredentialRequest = z.infer<typeof SessionCredentialRequest>;

export const SessionAction = z.enum(["open", "voucher", "topUp", "close"]);
export type SessionAction = z.infer<typeof SessionAction>;

/** A channel's accounting after the credential was applied (decimal base units). */
export const ChannelSnapshot = z.object({
  channelId: Hash32,
  payer: Address,
  acceptedCumulative: BaseUnits,
  deposit: BaseUnits,
  spent: BaseUnits,
});
export type ChannelSnapshot = z.infer<typeof ChannelSnapshot>;

export const SessionCredentialResult = z.discriminatedUnion("ok", [
  z.object({
    ok: z.literal(true),
    action: SessionAction,
    challengeId: z.string().min(1),
    channel: ChannelSnapshot,
    /** The on-chain transaction of an open, top-up or close. */
    txHash: Hash32.optional(),
  }),
  z.object({ ok: z.literal(false), problem: PaymentProblem.extend({ requiredTopUp: BaseUnits.optional() }) }),
]);
export type SessionCredentialResult = z.infer<typeof SessionCredentialResult>;

/**
 * A channel's live balance in Redis (`libs/runtime` channel-balances): one hash per channel, the hash tag keeps a
 * channel's keys in one cluster slot. Fields: accepted, spent, reserved, deposit, closing ("1" once a close is
 * requested or under way), payer, signer. Reservations of running requests: `<state>:res` (request id → base units).
 */
export const channelStateKey = (namespace: string, channelId: string) => `${namespace}:channel:{${channelId.toLowerCase()}}`;
