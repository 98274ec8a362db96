import { Inject, Injectable } from "@nestjs/common";
import type {
  ChargeVerifiedEvent,
  InferenceStartedEvent,
  SessionDepositedEvent,
  SessionSettledEvent,
  SessionSpentEvent,
  UsageEvent,
} from "@worldrouter/contracts";
import { batchPostingParams, ledgerBatchPostingCtes, PgPool, type GatedPosting, type PgClient } from "@worldrouter/db";

// Charge payments: claims · `Settlement` rows of the on-chain transfers · their "charge received" postings.
const RECORD_CHARGE_PAYMENTS = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::int[], $3::numeric[], $4::text[], $5::bigint[], $6::timestamptz[])
    AS e("paymentId", "chainId", "amount", "txHash", "blockNumber", "verifiedAt")),
claim AS (
  INSERT INTO "processed_events" ("consumer", "key") SELECT 'settlement.payments', "paymentId" FROM input
  ON CONFLICT DO NOTHING RETURNING "key"),
charge AS (
  INSERT INTO "settlements" ("id", "kind", "chainId", "amount", "txHash", "status", "blockNumber", "chargePaymentId", "confirmedAt")
  SELECT gen_random_uuid(), 'charge', input."chainId", input."amount", input."txHash", 'confirmed', input."blockNumber",
    input."paymentId"::uuid, input."verifiedAt"
  FROM input JOIN claim ON claim."key" = input."paymentId"),
${ledgerBatchPostingCtes("claim", 7)}
SELECT count(*)::int AS "claimed" FROM claim`;

// Inference starts: the request's row, `pending` until its usage completes it. The row's primary key is the
// claim; a start arriving after its usage only fills in `startedAt`.
const RECORD_INFERENCE_STARTS = `
INSERT INTO "inference_requests" ("id", "intent", "model", "provider", "payer", "chargePaymentId", "channelId", "status",
  "estimatedCost", "chargedCost", "startedAt")
SELECT e."id", e."intent", e."model", e."provider", e."payer", e."chargePaymentId", e."channelId", 'pending',
  e."estimatedCost", e."chargedCost", e."startedAt"
FROM unnest($1::text[], $2::"PaymentIntent"[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::text[], $8::numeric[],
  $9::numeric[], $10::timestamptz[])
  AS e("id", "intent", "model", "provider", "payer", "chargePaymentId", "channelId", "estimatedCost", "chargedCost", "startedAt")
ON CONFLICT ("id") DO UPDATE SET "startedAt" = EXCLUDED."startedAt" WHERE "inference_requests"."startedAt" IS NULL`;

// The charge payments a batch's usage bills, locked (in id order, so two replicas cannot deadlock on them) until
// COMMIT: the status read here is the status the usage statement moves. `applied`: its `charge.verified` is in.
const LOCK_CHARGE_PAYMENTS = `
SELECT c."id"::text AS "id", c."status"::text AS "status", c."payer", c."amount"::text AS "amount",
  EXISTS (SELECT 1 FROM "processed_events" p WHERE p."consumer" = 'settlement.payments' AND p."key" = c."id"::text) AS "applied"
FROM "charge_payments" c WHERE c."id" = ANY($1::uuid[]) ORDER BY c."id" FOR UPDATE OF c`;

// Usage: claims · `InferenceRequest` rows (completing a started one) · charge payments still `verified` moved to
// `consumed` or `refunding` · the usage postings of the consumed ones.
const RECORD_USAGES = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::"PaymentIntent"[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::text[],
    $8::"InferenceStatus"[], $9::int[], $10::int[], $11::int[], $12::numeric[], $13::numeric[], $14::numeric[], $15::text[],
    $16::text[], $17::int[], $18::int[], $19::timestamptz[], $20::"ChargePaymentStatus"[])
    AS e("id", "intent", "model", "provider", "payer", "chargePaymentId", "channelId", "status", "promptTokens", "completionTokens",
      "cachedTokens", "estimatedCost", "chargedCost", "actualCost", "finishReason", "errorClass", "ttftMs", "latencyMs", "completedAt",
      "paymentStatus")),
claim AS (
  INSERT INTO "processed_events" ("consumer", "key") SELECT 'settlement.usage', "id" FROM input
  ON CONFLICT DO NOTHING RETURNING "key"),
claimed AS (
  SELECT input.* FROM input JOIN claim ON claim."key" = input."id"),
request AS (
  INSERT INTO "inference_requests" ("id", "intent", "model", "provider", "payer", "chargePaymentId", "channelId", "status", "promptTokens",
    "completionTokens", "cachedTokens", "estimatedCost", "chargedCost", "actualCost", "finishReason", "errorClass", "ttftMs", "latencyMs",
    "completedAt")
  SELECT "id", "intent", "model", "provider", "payer", "chargePaymentId", "channelId", "status", "promptTokens", "completionTokens",
    "cachedTokens", "estimatedCost", "chargedCost", "actualCost", "finishReason", "errorClass", "ttftMs", "latencyMs", "completedAt"
  FROM claimed
  ON CONFLICT ("id") DO UPDATE SET "model" = EXCLUDED."model", "provider" = EXCLUDED."provider", "status" = EXCLUDED."status",
    "promptTokens" = EXCLUDED."promptTokens", "completionTokens" = EXCLUDED."completionTokens", "cachedTokens" = EXCLUDED."cachedTokens",
    "estimatedCost" = EXCLUDED."estimatedCost", "chargedCost" = EXCLUDED."chargedCost", "actualCost" = EXCLUDED."actualCost",
    "finishReason" = EXCLUDED."finishReason", "errorClass" = EXCLUDED."errorClass", "ttftMs" = EXCLUDED."ttftMs",
    "latencyMs" = EXCLUDED."latencyMs", "completedAt" = EXCLUDED."completedAt"),
settled AS (
  UPDATE "charge_payments" SET "status" = claimed."paymentStatus", "updatedAt" = now()
  FROM claimed
  WHERE "charge_payments"."id" = claimed."chargePaymentId" AND claimed."paymentStatus" IS NOT NULL AND "charge_payments"."status" = 'verified'),
${ledgerBatchPostingCtes("claim", 21)}
SELECT count(*)::int AS "claimed" FROM claim`;

// Session spending: claims · the channel's `spent` mirrored from the live balance · the "spent" postings.
const RECORD_SESSION_SPENDS = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[]) AS e("requestId", "channelId", "amount")),
claim AS (
  INSERT INTO "processed_events" ("consumer", "key") SELECT 'settlement.session-spent', "requestId" FROM input
  ON CONFLICT DO NOTHING RETURNING "key"),
spent AS (
  SELECT input."channelId", sum(input."amount") AS "amount" FROM input JOIN claim ON claim."key" = input."requestId" GROUP BY input."channelId"),
channel AS (
  UPDATE "channels" SET "spent" = "channels"."spent" + spent."amount", "lastUsedAt" = now(), "updatedAt" = now()
  FROM spent WHERE "channels"."id" = spent."channelId"),
${ledgerBatchPostingCtes("claim", 4)}
SELECT count(*)::int AS "claimed" FROM claim`;

// Channel deposits (open, top-up): claims · their "deposited" postings (the verifier wrote the channel row).
const RECORD_SESSION_DEPOSITS = `
WITH input AS (SELECT * FROM unnest($1::text[]) AS e("key")),
claim AS (
  INSERT INTO "processed_events" ("consumer", "key") SELECT 'settlement.session-deposits', "key" FROM input
  ON CONFLICT DO NOTHING RETURNING "key"),
${ledgerBatchPostingCtes("claim", 2)}
SELECT count(*)::int AS "claimed" FROM claim`;

// Channel payouts (settle, close): claims · `Settlement` rows · the channel's settled amount (and status on a close) ·
// their "settled" postings.
const RECORD_SESSION_SETTLEMENTS = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::numeric[], $5::numeric[], $6::boolean[], $7::bigint[], $8::timestamptz[])
    AS e("txHash", "channelId", "chainId", "captured", "settledCumulative", "close", "blockNumber", "settledAt")),
claim AS (
  INSERT INTO "processed_events" ("consumer", "key") SELECT 'settlement.session-settlements', "txHash" FROM input
  ON CONFLICT DO NOTHING RETURNING "key"),
claimed AS (SELECT input.* FROM input JOIN claim ON claim."key" = input."txHash"),
row AS (
  INSERT INTO "settlements" ("id", "kind", "chainId", "amount", "txHash", "status", "blockNumber", "channelId", "confirmedAt")
  SELECT gen_random_uuid(), CASE WHEN "close" THEN 'channel_close'::"SettlementKind" ELSE 'channel_settle'::"SettlementKind" END,
    "chainId", "captured", "txHash", 'confirmed', "blockNumber", "channelId", "settledAt" FROM claimed
  ON CONFLICT ("txHash") DO NOTHING),
channel AS (
  UPDATE "channels" SET "settledCumulative" = GREATEST("channels"."settledCumulative", claimed."settledCumulative"),
    "status" = CASE WHEN claimed."close" THEN 'closed'::"ChannelStatus" ELSE "channels"."status" END,
    "closeTxHash" = CASE WHEN claimed."close" THEN claimed."txHash" ELSE "channels"."closeTxHash" END, "updatedAt" = now()
  FROM claimed WHERE "channels"."id" = claimed."channelId"),
${ledgerBatchPostingCtes("claim", 9)}
SELECT count(*)::int AS "claimed" FROM claim`;

/** A charge payment as a batch's usage finds it, locked. */
export interface LockedChargePayment {
  status: string;
  payer: string;
  paid: bigint;
  /** Its `charge.verified` event is applied (usage waits for it). */
  applied: boolean;
}

/** One usage event to record, with the payment status it moves a still-`verified` payment to (null: none). */
export interface UsageRecord {
  event: UsageEvent;
  actualCost: bigint | null;
  paymentStatus: "consumed" | "refunding" | null;
}

/**
 * Settlement's writes of money events, a batch at a time: one multi-row statement per kind, all inside the ONE
 * transaction `inTransaction` opens (so a batch commits whole or not at all). Each statement takes its events'
 * idempotency claims in `processed_events` itself and writes only for the claims it took: a redelivered event
 * changes nothing. Postings are built by the caller (pure functions) and balanced twice: here, and by the
 * database at commit.
 */
@Injectable()
export class LedgerRepository {
  constructor(@Inject(PgPool) private readonly pool: PgPool) {}

  async inTransaction<T>(work: (tx: PgClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** Returns how many were new. */
  async recordChargePayments(tx: PgClient, events: ChargeVerifiedEvent[], postings: GatedPosting[]): Promise<number> {
    const { rows } = await tx.query<{ claimed: number }>({
      name: "settlement.record-charge-payments",
      text: RECORD_CHARGE_PAYMENTS,
      values: [
        events.map((e) => e.paymentId),
        events.map((e) => e.chainId),
        events.map((e) => e.amount),
        events.map((e) => e.txHash),
        events.map((e) => e.blockNumber),
        events.map((e) => new Date(e.verifiedAt)),
        ...batchPostingParams(postings),
      ],
    });
    return rows[0]!.claimed;
  }

  async recordInferenceStarts(tx: PgClient, events: InferenceStartedEvent[]): Promise<void> {
    await tx.query({
      name: "settlement.record-inference-starts",
      text: RECORD_INFERENCE_STARTS,
      values: [
        ...requestColumns(events),
        events.map((e) => e.estimatedCost),
        events.map((e) => e.chargedCost),
        events.map((e) => new Date(e.startedAt)),
      ],
    });
  }

  async lockChargePayments(tx: PgClient, paymentIds: string[]): Promise<Map<string, LockedChargePayment>> {
    const { rows } = await tx.query<{ id: string; status: string; payer: string; amount: string; applied: boolean }>({
      name: "settlement.lock-charge-payments",
      text: LOCK_CHARGE_PAYMENTS,
      values: [paymentIds],
    });
    return new Map(rows.map((r) => [r.id, { status: r.status, payer: r.payer, paid: BigInt(r.amount), applied: r.applied }]));
  }

  /** Returns how many were new. */
  async recordUsages(tx: PgClient, records: UsageRecord[], postings: GatedPosting[]): Promise<number> {
    const events = records.map((r) => r.event);
    const { rows } = await tx.query<{ claimed: number }>({
      name: "settlement.record-usages",
      text: RECORD_USAGES,
      values: [
        ...requestColumns(events),
        events.map((e) => e.status),
        events.map((e) => e.promptTokens),
        events.map((e) => e.completionTokens),
        events.map((e) => e.cachedTokens),
        events.map((e) => e.estimatedCost),
        events.map((e) => e.chargedCost),
        records.map((r) => r.actualCost?.toString() ?? null),
        events.map((e) => e.finishReason),
        events.map((e) => e.errorClass),
        events.map((e) => e.ttftMs),
        events.map((e) => e.latencyMs),
        events.map((e) => new Date(e.completedAt)),
        records.map((r) => r.paymentStatus),
        ...batchPostingParams(postings),
      ],
    });
    return rows[0]!.claimed;
  }

  /** Returns how many were new. */
  async recordSessionSpends(tx: PgClient, events: SessionSpentEvent[], postings: GatedPosting[]): Promise<number> {
    const { rows } = await tx.query<{ claimed: number }>({
      name: "settlement.record-session-spends",
      text: RECORD_SESSION_SPENDS,
      values: [
        events.map((e) => e.requestId),
        events.map((e) => e.channelId),
        events.map((e) => e.amount),
        ...batchPostingParams(postings),
      ],
    });
    return rows[0]!.claimed;
  }

  async recordSessionDeposits(tx: PgClient, events: SessionDepositedEvent[], postings: GatedPosting[]): Promise<number> {
    const { rows } = await tx.query<{ claimed: number }>({
      name: "settlement.record-session-deposits",
      text: RECORD_SESSION_DEPOSITS,
      values: [events.map(depositKey), ...batchPostingParams(postings)],
    });
    return rows[0]!.claimed;
  }

  async recordSessionSettlements(tx: PgClient, events: SessionSettledEvent[], postings: GatedPosting[]): Promise<number> {
    const { rows } = await tx.query<{ claimed: number }>({
      name: "settlement.record-session-settlements",
      text: RECORD_SESSION_SETTLEMENTS,
      values: [
        events.map((e) => e.txHash),
        events.map((e) => e.channelId),
        events.map((e) => e.chainId),
        events.map((e) => e.captured),
        events.map((e) => e.settledCumulative),
        events.map((e) => e.close),
        events.map((e) => e.blockNumber),
        events.map((e) => new Date(e.settledAt)),
        ...batchPostingParams(postings),
      ],
    });
    return rows[0]!.claimed;
  }
}

/** The idempotency key of a deposit: one transaction can fund one channel once. */
export const depositKey = (e: SessionDepositedEvent) => `${e.txHash}:${e.channelId}`;

/** The request columns both inference statements start with ($1-$7), one array per column. */
function requestColumns(events: (InferenceStartedEvent | UsageEvent)[]) {
  return [
    events.map((e) => e.requestId),
    events.map((e) => e.intent),
    events.map((e) => e.model),
    events.map((e) => e.provider),
    events.map((e) => e.payer),
    events.map((e) => e.chargePaymentId ?? null),
    events.map((e) => e.channelId ?? null),
  ];
}
