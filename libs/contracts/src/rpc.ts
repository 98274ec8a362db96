import { z } from "zod";
import { Address, BaseUnits, Hash32, RequestId } from "./primitives.js";

/**
 * Request/response patterns (gateway → payment-verifier) on the Redis Streams transport (`rpc-streams.ts`), and the
 * service that serves them (its replicas share one request stream).
 */
export const RPC_SERVICE = "payment-verifier";
export const RPC = {
  verifyPayment: "payment.verify",
  /** Session intent: open, voucher, topUp or close (`session.ts`). */
  sessionCredential: "session.credential",
  ping: "payment.ping",
} as const;

/** What the gateway priced and bound the challenge to; the verifier recomputes the challenge from it. */
export const VerifyPaymentRequest = z.object({
  requestId: RequestId,
  /** The raw `Authorization` header value (`Payment <base64url>`). */
  authorization: z.string().max(64 * 1024),
  /** sha-256 digest of the request body, as bound into the challenge. */
  bodyDigest: z.string().min(1),
  amount: BaseUnits,
  model: z.string(),
});
export type VerifyPaymentRequest = z.infer<typeof VerifyPaymentRequest>;

/** RFC 9457 problem, as the verifier decided it; the gateway renders it unchanged. */
export const PaymentProblem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  /** Seconds after which the same credential may be sent again (a 503 or 429 with no new challenge): `Retry-After`. */
  retryAfter: z.number().int().positive().optional(),
});
export type PaymentProblem = z.infer<typeof PaymentProblem>;

export const VerifyPaymentResult = z.discriminatedUnion("ok", [
  z.object({
    ok: z.literal(true),
    paymentId: z.string().uuid(),
    payer: Address,
    txHash: Hash32,
    amount: BaseUnits,
    /** base64url `Payment-Receipt` header value. */
    receipt: z.string(),
  }),
  z.object({ ok: z.literal(false), problem: PaymentProblem }),
]);
export type VerifyPaymentResult = z.infer<typeof VerifyPaymentResult>;

export const PingResult = z.object({ service: z.literal("payment-verifier"), at: z.number() });
export type PingResult = z.infer<typeof PingResult>;
