import { Inject, Injectable } from "@nestjs/common";
import type { ChargeVerifiedEvent, UsageEvent } from "@worldrouter/contracts";
import { ledgerPostingCtes, PgPool, postingParams, type LedgerPosting } from "@worldrouter/db";

// Charge payment: claim · `Settlement` row of the on-chain transfer · "charge received" posting.
const RECORD_CHARGE_PAYMENT = `
WITH claim AS (
  INSERT INTO "processed_events" ("consumer", "key") VALUES ('settlement.payments', $1::text)
  ON CONFLICT DO NOTHING RETURNING "key"),
charge AS (
  INSERT INTO "settlements" ("id", "kind", "chainId", "amount", "txHash", "status", "blockNumber", "chargePaymentId", "confirmedAt")
  SELECT gen_random_uuid(), 'charge', $2::int, $3::numeric, $4::text, 'confirmed', $5::bigint, $1::uuid, $6::timestamptz FROM claim),
${ledgerPostingCtes("claim", 7)}
SELECT EXISTS (SELECT 1 FROM claim) AS "claimed"`;

// Usage: claim · `InferenceRequest` row · for a charge still `verified`, its new status and (when consumed)
// the usage posting. The posting was built from the payment's payer and amount as the caller expects them
// ($20, $21); if the row disagrees, nothing at all is written and the row's own facts are returned
// (`mismatch`) so the caller can rebuild the posting and run the statement again.
const RECORD_USAGE = `
WITH payment AS (
  SELECT "status", "payer", "amount" FROM "charge_payments" WHERE "id" = $19::uuid),
mismatch AS (
  SELECT 1 FROM payment WHERE "status" = 'verified' AND ("payer" <> $20::text OR "amount" <> $21::numeric)),
claim AS (
  INSERT INTO "processed_events" ("consumer", "key") SELECT 'settlement.usage', $1::text WHERE NOT EXISTS (SELECT 1 FROM mismatch)
  ON CONFLICT DO NOTHING RETURNING "key"),
request AS (
  INSERT INTO "inference_requests" ("id", "intent", "model", "provider", "payer", "chargePaymentId", "channelId", "status", "promptTokens",
    "completionTokens", "cachedTokens", "estimatedCost", "chargedCost", "actualCost", "finishReason", "errorClass", "ttftMs", "latencyMs", "completedAt")
  SELECT $1::text, $2::"PaymentIntent", $3::text, $4::text, $5::text, $6::uuid, $7::text, $8::"InferenceStatus", $9::int,
    $10::int, $11::int, $12::numeric, $28::numeric, $13::numeric, $14::text, $15::text, $16::int, $17::int, $18::timestamptz FROM claim),
settled AS (
  UPDATE "charge_payments" SET "status" = $22::"ChargePaymentStatus", "updatedAt" = now()
  WHERE "id" = $19::uuid AND "status" = 'verified' AND EXISTS (SELECT 1 FROM claim)
  RETURNING "status"),
billed AS (
  SELECT 1 FROM settled WHERE "status" = 'consumed'),
${ledgerPostingCtes("billed", 23)}
SELECT EXISTS (SELECT 1 FROM claim) AS "claimed", EXISTS (SELECT 1 FROM mismatch) AS "mismatch",
  COALESCE((SELECT "status" FROM settled), payment."status")::text AS "paymentStatus", payment."payer", payment."amount"::text AS "paid"
FROM (SELECT 1) AS one LEFT JOIN payment ON true`;

/** A charge payment's immutable facts a usage posting is built from. */
export interface PaymentFacts {
  payer: string;
  paid: bigint;
}

/**
 * What a usage event does to its charge payment if the payment is still `verified`: `consumed` and billed
 * by `posting`, or (`posting` null: the inference served nothing) `refunding`.
 */
export interface ChargeUsage {
  paymentId: string;
  facts: PaymentFacts;
  posting: LedgerPosting | null;
}

export interface UsageRecorded {
  claimed: boolean;
  /** Nothing was written: the payment's row disagrees with `facts`; these are its own. */
  mismatch: PaymentFacts | null;
  /** The payment's status after the statement (null without a charge payment). */
  paymentStatus: string | null;
}

/**
 * Settlement's write per consumed event, each ONE prepared statement on the raw pool: the event's claim, the
 * rows it adds, the payment status it moves and its ledger posting commit together or not at all, without
 * an interactive transaction (no BEGIN/COMMIT round trips, no per-query compilation). A redelivered event
 * finds its claim taken and changes nothing.
 */
@Injectable()
export class LedgerRepository {
  constructor(@Inject(PgPool) private readonly pool: PgPool) {}

  /** Returns false when the event was already recorded. */
  async recordChargePayment(event: ChargeVerifiedEvent, posting: LedgerPosting): Promise<boolean> {
    const { rows } = await this.pool.query<{ claimed: boolean }>({
      name: "settlement.record-charge-payment",
      text: RECORD_CHARGE_PAYMENT,
      values: [
        event.paymentId,
        event.chainId,
        event.amount,
        event.txHash,
        event.blockNumber,
        new Date(event.verifiedAt),
        ...postingParams(posting),
      ],
    });
    return rows[0]!.claimed;
  }

  async recordUsage(event: UsageEvent, actualCost: bigint | null, charge: ChargeUsage | null): Promise<UsageRecorded> {
    const { rows } = await this.pool.query<{
      claimed: boolean;
      mismatch: boolean;
      paymentStatus: string | null;
      payer: string | null;
      paid: string | null;
    }>({
      name: "settlement.record-usage",
      text: RECORD_USAGE,
      values: [
        event.requestId,
        event.intent,
        event.model,
        event.provider,
        event.payer,
        event.chargePaymentId ?? null,
        event.channelId ?? null,
        event.status,
        event.promptTokens,
        event.completionTokens,
        event.cachedTokens,
        event.estimatedCost,
        actualCost?.toString() ?? null,
        event.finishReason,
        event.errorClass,
        event.ttftMs,
        event.latencyMs,
        new Date(event.completedAt),
        charge?.paymentId ?? null,
        charge?.facts.payer ?? null,
        charge?.facts.paid.toString() ?? null,
        charge?.posting ? "consumed" : "refunding",
        ...(charge?.posting ? postingParams(charge.posting) : [null, null, null, null, null]),
        event.chargedCost,
      ],
    });
    const row = rows[0]!;
    return {
      claimed: row.claimed,
      mismatch: row.mismatch ? { payer: row.payer!, paid: BigInt(row.paid!) } : null,
      paymentStatus: row.paymentStatus,
    };
  }
}
