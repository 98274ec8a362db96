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
  /**
   * Epoch ms after which the job must not start: its gateway stops waiting then (INFERENCE_REPLY_TIMEOUT_MS after
   * `enqueuedAt`) and its client got a 504. A worker drops a job past it (see `inferenceAdmissionKey`).
   */
  deadline: z.number().int(),
});
export type InferenceJob = z.infer<typeof InferenceJob>;

/**
 * payment-verifier → itself: a charge that settled on-chain but could not be recorded in Postgres in time. Retried
 * until it is recorded (it then gets its `charge.verified` money event; no inference ran, so settlement's orphan sweep refunds it).
 */
export const ChargeRecordJob = z.object({
  /** The payment's `pending` row (its charge.verified event was published with this id before it was queued). */
  paymentId: z.string().uuid().optional(),
  challengeId: z.string().min(1),
  txHash: Hash32,
  requestId: RequestId,
  payer: Address,
  amount: BaseUnits,
  blockNumber: z.string().regex(/^\d+$/),
  settledAt: z.number().int(),
});
export type ChargeRecordJob = z.infer<typeof ChargeRecordJob>;

/** A tick of the verifier's charge-outcomes scheduler: resolve `pending` charge payments from their receipts. */
export const ChargeOutcomesJob = z.object({ requestedAt: z.number().int() });
export type ChargeOutcomesJob = z.infer<typeof ChargeOutcomesJob>;

/**
 * Work for settlement: refund a payer, sweep charges that were paid but never reached an inference, or compare the
 * next block range of the chain with the ledger.
 */
export const SettlementJob = z.object({
  kind: z.enum(["refund", "charges.sweep", "chain.reconcile"]),
  /** The charge payment id for a refund, or the sweep's name. */
  reference: z.string().min(1),
  requestedAt: z.number().int(),
});
export type SettlementJob = z.infer<typeof SettlementJob>;
