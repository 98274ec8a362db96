import { Inject, Injectable } from "@nestjs/common";
import { PgPool } from "@worldrouter/db";

/**
 * The verifier's `charge_payments` statements (named, prepared, on the raw pool: Prisma's query path measured 2-3x the
 * CPU per statement). A sponsored charge's row is written `pending` before its broadcast and settled afterwards by
 * the verification itself or, when its outcome is unknown, by the charge-outcomes job.
 */
type Hex = `0x${string}`;

export type ChargePaymentStatus = "pending" | "failed" | "verified" | "consumed" | "refunding" | "refunded" | "kept_as_dust";

export interface ChargePaymentRow {
  id: string;
  challengeId: string;
  requestId: string;
  status: ChargePaymentStatus;
  servedRequestId: string | null;
  payer: Hex;
  txHash: Hex;
  amount: string;
  createdAt: Date;
  resolveAfter: Date | null;
  mineableUntil: Date | null;
}

export interface PaymentFacts {
  challengeId: string;
  txHash: Hex;
  requestId: string;
  payer: Hex;
  recipient: Hex;
  token: Hex;
  chainId: number;
  amount: bigint;
}

const COLUMNS = `"id", "challengeId", "requestId", "status", "servedRequestId", "payer", "txHash", "amount"::text AS "amount",
  "createdAt", "resolveAfter", "mineableUntil"`;

const INSERT_PENDING = `
INSERT INTO "charge_payments" ("id", "challengeId", "txHash", "requestId", "payer", "recipient", "token", "chainId", "amount",
  "status", "resolveAfter", "mineableUntil", "updatedAt")
VALUES (gen_random_uuid(), $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::int, $8::numeric, 'pending',
  now() + make_interval(secs => $9::int / 1000.0), to_timestamp($10::bigint), now())
ON CONFLICT DO NOTHING RETURNING "id"`;

/**
 * The payment `verified` (mined), served to `$10` when given: a new row (a pushed hash), our own `pending` row, or
 * (a retry after a later step failed) the row an earlier attempt of this request settled. No row back = that tx or
 * challenge already paid for something else, or the payment was served to another request.
 */
const SETTLE_VERIFIED = `
WITH inserted AS (
  INSERT INTO "charge_payments" ("id", "challengeId", "txHash", "requestId", "payer", "recipient", "token", "chainId", "amount",
    "blockNumber", "status", "servedRequestId", "servedAt", "updatedAt")
  VALUES (gen_random_uuid(), $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::int, $8::numeric, $9::bigint,
    'verified', $10::text, CASE WHEN $10::text IS NULL THEN NULL ELSE now() END, now())
  ON CONFLICT DO NOTHING RETURNING "id"),
settled AS (
  UPDATE "charge_payments" SET "status" = 'verified', "blockNumber" = $9::bigint,
    "servedRequestId" = COALESCE("servedRequestId", $10::text),
    "servedAt" = COALESCE("servedAt", CASE WHEN $10::text IS NULL THEN NULL ELSE now() END), "updatedAt" = now()
  WHERE NOT EXISTS (SELECT 1 FROM inserted) AND "txHash" = $2::text AND "challengeId" = $1::text AND "requestId" = $3::text
    AND "status" IN ('pending', 'verified') AND ($10::text IS NULL OR "servedRequestId" IS NULL OR "servedRequestId" = $10::text)
  RETURNING "id")
SELECT "id" FROM inserted UNION ALL SELECT "id" FROM settled`;

/** A verified payment served to one request only: the first to claim it, or the same request again. */
const CLAIM_SERVED = `
UPDATE "charge_payments" SET "servedRequestId" = $2::text, "servedAt" = COALESCE("servedAt", now()), "updatedAt" = now()
WHERE "challengeId" = $1::text AND "status" = 'verified' AND ("servedRequestId" IS NULL OR "servedRequestId" = $2::text)
RETURNING ${COLUMNS}`;

@Injectable()
export class ChargePaymentsRepository {
  constructor(@Inject(PgPool) private readonly db: PgPool) {}

  /** Before the broadcast: the new row's id; none when the tx or challenge already has a row (paid or being paid elsewhere). */
  async insertPending(facts: PaymentFacts, resolveAfterMs: number, mineableUntilSeconds: number): Promise<string | undefined> {
    const { rows } = await this.db.query<{ id: string }>({
      name: "insert-pending-charge-payment",
      text: INSERT_PENDING,
      values: [...factValues(facts), resolveAfterMs, mineableUntilSeconds],
    });
    return rows[0]?.id;
  }

  /** The payment's id, or undefined (see SETTLE_VERIFIED). */
  async settleVerified(facts: PaymentFacts, blockNumber: bigint, servedRequestId: string | null): Promise<string | undefined> {
    const { rows } = await this.db.query<{ id: string }>({
      name: "settle-verified-charge-payment",
      text: SETTLE_VERIFIED,
      values: [...factValues(facts), blockNumber.toString(), servedRequestId],
    });
    return rows[0]?.id;
  }

  /** A pending payment whose transaction was never broadcast (the node was never reached): as if never written. */
  async deletePending(txHash: Hex): Promise<void> {
    await this.db.query({
      name: "delete-pending-charge-payment",
      text: `DELETE FROM "charge_payments" WHERE "txHash" = $1::text AND "status" = 'pending'`,
      values: [txHash],
    });
  }

  /** Broadcast, outcome unknown: the charge-outcomes job may resolve it from now on. */
  async markOutcomeUnknown(txHash: Hex): Promise<void> {
    await this.db.query({
      name: "charge-payment-outcome-unknown",
      text: `UPDATE "charge_payments" SET "resolveAfter" = now(), "updatedAt" = now() WHERE "txHash" = $1::text AND "status" = 'pending'`,
      values: [txHash],
    });
  }

  /** Mined as something else than the charge (reverted), or can no longer be mined: nothing was paid. */
  async markFailed(txHash: Hex): Promise<boolean> {
    const { rowCount } = await this.db.query({
      name: "charge-payment-failed",
      text: `UPDATE "charge_payments" SET "status" = 'failed', "updatedAt" = now() WHERE "txHash" = $1::text AND "status" = 'pending'`,
      values: [txHash],
    });
    return rowCount === 1;
  }

  async byChallenge(challengeId: string): Promise<ChargePaymentRow | undefined> {
    const { rows } = await this.db.query<ChargePaymentRow>({
      name: "charge-payment-by-challenge",
      text: `SELECT ${COLUMNS} FROM "charge_payments" WHERE "challengeId" = $1::text`,
      values: [challengeId],
    });
    return rows[0];
  }

  async claimServed(challengeId: string, requestId: string): Promise<ChargePaymentRow | undefined> {
    const { rows } = await this.db.query<ChargePaymentRow>({
      name: "claim-served-charge-payment",
      text: CLAIM_SERVED,
      values: [challengeId, requestId],
    });
    return rows[0];
  }

  /** Pending payments no verification is still working on, oldest first. */
  async duePending(limit: number): Promise<ChargePaymentRow[]> {
    const { rows } = await this.db.query<ChargePaymentRow>({
      name: "due-pending-charge-payments",
      text: `SELECT ${COLUMNS} FROM "charge_payments" WHERE "status" = 'pending' AND "resolveAfter" <= now() ORDER BY "resolveAfter" LIMIT $1::int`,
      values: [limit],
    });
    return rows;
  }
}

function factValues(facts: PaymentFacts) {
  return [
    facts.challengeId,
    facts.txHash,
    facts.requestId,
    facts.payer,
    facts.recipient,
    facts.token,
    facts.chainId,
    facts.amount.toString(),
  ] as const;
}
