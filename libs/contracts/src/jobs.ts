import { z } from "zod";
import { Address, BaseUnits, Hash32, Intent, RequestId } from "./primitives.js";

/** gateway → inference-worker: run one validated OpenAI chat-completions request. */
export const InferenceJob = z.object({
  requestId: RequestId,
  model: z.string().min(1),
  intent: Intent,
  payer: Address,
  /** The validated OpenAI chat-completions body, passed through to the provider. */
  body: z.record(z.string(), z.unknown()),
  stream: z.boolean(),
  promptTokens: z.number().int().nonnegative(),
  /** The seed estimate: ceil(prompt_tokens × input_price × overhead). */
  estimatedCost: BaseUnits,
  /** What the client paid for this request (charge: the price in its challenge). */
  chargedCost: BaseUnits,
  chargePaymentId: z.string().uuid().optional(),
  channelId: Hash32.optional(),
  /** The gateway instance's reply stream (`replyStreamKey`): chunks go there, tagged with the request id. */
  replyTo: z.string().min(1),
  enqueuedAt: z.number().int(),
});
export type InferenceJob = z.infer<typeof InferenceJob>;

export const InferenceOutcome = z.enum(["succeeded", "failed", "cancelled"]);

/** inference-worker → settlement: exactly one per request, even when the stream failed mid-way. */
export const UsageEvent = z.object({
  requestId: RequestId,
  model: z.string(),
  provider: z.string(),
  intent: Intent,
  payer: Address,
  chargePaymentId: z.string().uuid().optional(),
  channelId: Hash32.optional(),
  status: InferenceOutcome,
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  cachedTokens: z.number().int().nonnegative(),
  cacheWriteTokens: z.number().int().nonnegative().default(0),
  /** The seed estimate: ceil(prompt_tokens × input_price × overhead). */
  estimatedCost: BaseUnits,
  /** What the client paid for this request (charge: the price in its challenge). */
  chargedCost: BaseUnits,
  finishReason: z.string().nullable(),
  errorClass: z.string().nullable(),
  ttftMs: z.number().int().nonnegative().nullable(),
  latencyMs: z.number().int().nonnegative(),
  completedAt: z.number().int(),
});
export type UsageEvent = z.infer<typeof UsageEvent>;

/** payment-verifier → settlement: an on-chain charge payment was verified and claimed. */
export const ChargeVerifiedEvent = z.object({
  kind: z.literal("charge.verified"),
  paymentId: z.string().uuid(),
  challengeId: z.string().min(1),
  requestId: RequestId,
  txHash: Hash32,
  payer: Address,
  recipient: Address,
  token: Address,
  chainId: z.number().int().positive(),
  amount: BaseUnits,
  blockNumber: z.string().regex(/^\d+$/).nullable(),
  verifiedAt: z.number().int(),
});
export type ChargeVerifiedEvent = z.infer<typeof ChargeVerifiedEvent>;

/**
 * payment-verifier → itself: a charge that settled on-chain but could not be recorded in Postgres in time. Retried
 * until it is recorded (it then gets its `payments` event; no inference ran, so settlement's orphan sweep refunds it).
 */
export const ChargeRecordJob = z.object({
  challengeId: z.string().min(1),
  txHash: Hash32,
  requestId: RequestId,
  payer: Address,
  amount: BaseUnits,
  blockNumber: z.string().regex(/^\d+$/),
  settledAt: z.number().int(),
});
export type ChargeRecordJob = z.infer<typeof ChargeRecordJob>;

/** Work for settlement: refund a payer, or sweep charges that were paid but never reached an inference. */
export const SettlementJob = z.object({
  kind: z.enum(["refund", "charges.sweep"]),
  /** The charge payment id for a refund, or the sweep's name. */
  reference: z.string().min(1),
  requestedAt: z.number().int(),
});
export type SettlementJob = z.infer<typeof SettlementJob>;
