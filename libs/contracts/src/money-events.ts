import { z } from "zod";
import { Address, BaseUnits, Hash32, Intent, RequestId } from "./primitives.js";

/**
 * Money events: the facts settlement writes into the ledger, one discriminated union by `kind` (session events
 * join it as further kinds). They travel on ONE Redis Stream, read by settlement as one consumer group in batches:
 *
 *   stream  `<namespace>:money:events`   entry fields: `event` = JSON of a `MoneyEvent` (validated by the consumer)
 *   group   `settlement`                  each entry applied by one settlement replica, acknowledged after COMMIT
 *   parked  `<namespace>:money:parked`   entry fields: `id` (the original entry id), `event` (raw), `error`
 *
 * One stream rather than one per kind, because order between kinds matters: a request's `charge.verified` is added
 * (awaited) before the gateway dispatches the inference, so it precedes that request's `inference.started` and
 * `inference.usage` in the stream, and one batch applies them in that order. Two replicas (or a reclaim) can still
 * apply a usage before its payment; the consumer then leaves that usage pending and retries it, never parks it.
 * Entries are not deleted on acknowledgement: the stream is trimmed (XTRIM MINID) only below what every group has
 * acknowledged, so a second group (an audit reader) can be added without losing anything.
 */

/** payment-verifier → settlement: an on-chain charge payment was verified and claimed (its row is written). */
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

/** Which request an inference event is about, and who pays for it how (both inference events carry it). */
const InferenceRequestFacts = z.object({
  requestId: RequestId,
  model: z.string(),
  provider: z.string(),
  intent: Intent,
  payer: Address,
  chargePaymentId: z.string().uuid().optional(),
  channelId: Hash32.optional(),
});

/**
 * inference-worker → settlement: a streamed request is about to deliver its first output. Added (awaited) before
 * anything reaches the gateway, so a payment whose inference delivered anything always has its start on record: the
 * orphan sweep refunds only payments without one. A non-streamed request publishes its whole usage (which implies the
 * start) before its completion leaves instead, and a stream its usage before its `end`.
 */
export const InferenceStartedEvent = z.object({
  kind: z.literal("inference.started"),
  ...InferenceRequestFacts.shape,
  estimatedCost: BaseUnits,
  chargedCost: BaseUnits,
  startedAt: z.number().int(),
});
export type InferenceStartedEvent = z.infer<typeof InferenceStartedEvent>;

export const InferenceOutcome = z.enum(["succeeded", "failed", "cancelled"]);

/** inference-worker → settlement: exactly one per request, even when the stream failed mid-way. */
export const UsageEvent = z.object({
  kind: z.literal("inference.usage"),
  ...InferenceRequestFacts.shape,
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

/**
 * gateway → settlement: what one session request spent from its channel, committed in Redis (the live balance)
 * before the output it pays for was delivered; settlement mirrors it into `channels.spent` (and the ledger) once.
 */
export const SessionSpentEvent = z.object({
  kind: z.literal("session.spent"),
  channelId: Hash32,
  requestId: RequestId,
  payer: Address,
  amount: BaseUnits,
  spentAt: z.number().int(),
});
export type SessionSpentEvent = z.infer<typeof SessionSpentEvent>;

/** payment-verifier → settlement: a channel's deposit grew on-chain (its open or a top-up), by `amount`. */
export const SessionDepositedEvent = z.object({
  kind: z.literal("session.deposited"),
  channelId: Hash32,
  payer: Address,
  token: Address,
  chainId: z.number().int().positive(),
  amount: BaseUnits,
  txHash: Hash32,
  depositedAt: z.number().int(),
});
export type SessionDepositedEvent = z.infer<typeof SessionDepositedEvent>;

/**
 * payment-verifier or settlement → settlement: a channel's escrow paid out on-chain: `captured` to the payee (a settle
 * or the close) and, on a close, `returned` (the unspent deposit) to the payer.
 */
export const SessionSettledEvent = z.object({
  kind: z.literal("session.settled"),
  channelId: Hash32,
  payer: Address,
  token: Address,
  chainId: z.number().int().positive(),
  close: z.boolean(),
  captured: BaseUnits,
  returned: BaseUnits,
  /** The channel's settled amount on-chain after this transaction. */
  settledCumulative: BaseUnits,
  txHash: Hash32,
  blockNumber: z.string().regex(/^\d+$/),
  settledAt: z.number().int(),
});
export type SessionSettledEvent = z.infer<typeof SessionSettledEvent>;

export const MoneyEvent = z.discriminatedUnion("kind", [
  ChargeVerifiedEvent,
  InferenceStartedEvent,
  UsageEvent,
  SessionSpentEvent,
  SessionDepositedEvent,
  SessionSettledEvent,
]);
export type MoneyEvent = z.infer<typeof MoneyEvent>;
export type MoneyEventKind = MoneyEvent["kind"];
export const MONEY_EVENT_KINDS = MoneyEvent.options.map((o) => o.shape.kind.value) as MoneyEventKind[];

export const moneyEventStreamKey = (namespace: string) => `${namespace}:money:events`;
/** Where events that can never apply (schema-invalid, or failing alone) are parked with their error, for ops. */
export const parkedMoneyEventStreamKey = (namespace: string) => `${namespace}:money:parked`;
/** The one consumer group every settlement replica reads the money events with. */
export const MONEY_EVENTS_GROUP = "settlement";
/** The entry field that carries the event JSON. */
export const MONEY_EVENT_FIELD = "event";
