import type { Db } from "./client.js";

export interface LedgerLine {
  account: string;
  /** Positive = debit, negative = credit, token base units. */
  amount: bigint;
}

export interface LedgerPosting {
  kind: string;
  reference: string;
  idempotencyKey: string;
  lines: LedgerLine[];
}

export class UnbalancedLedgerTransactionError extends Error {
  override readonly name = "UnbalancedLedgerTransactionError";
}

/**
 * Writes one balanced ledger transaction. Zero lines are dropped (a variance of 0 is not an entry).
 * Balance is checked here for a clear error and again by the database at commit (deferred trigger),
 * which is the real guarantee. Returns false when the idempotency key was already posted.
 */
export async function postLedgerTransaction(db: Db, posting: LedgerPosting): Promise<boolean> {
  const lines = posting.lines.filter((l) => l.amount !== 0n);
  const sum = lines.reduce((s, l) => s + l.amount, 0n);
  if (lines.length < 2 || sum !== 0n) {
    throw new UnbalancedLedgerTransactionError(`ledger transaction ${posting.idempotencyKey} is unbalanced: ${lines.length} lines summing to ${sum}`);
  }
  // One statement: header and lines commit together even outside an explicit transaction.
  const rows = await db.$queryRaw<{ transactionId: string }[]>`
    WITH header AS (
      INSERT INTO "ledger_transactions" ("id", "kind", "reference", "idempotencyKey")
      VALUES (gen_random_uuid(), ${posting.kind}, ${posting.reference}, ${posting.idempotencyKey})
      ON CONFLICT ("idempotencyKey") DO NOTHING RETURNING "id")
    INSERT INTO "ledger_entries" ("transactionId", "account", "amount")
    SELECT header."id", line.account, line.amount
    FROM header, unnest(${lines.map((l) => l.account)}::text[], ${lines.map((l) => l.amount.toString())}::numeric[]) AS line(account, amount)
    RETURNING "transactionId"`;
  return rows.length > 0;
}

/** Sum of an account's entries (debits positive). */
export async function accountBalance(db: Db, account: string): Promise<bigint> {
  const rows = await db.$queryRaw<{ total: string }[]>`SELECT COALESCE(SUM("amount"), 0)::text AS total FROM "ledger_entries" WHERE "account" = ${account}`;
  return BigInt(rows[0]?.total ?? "0");
}

/** Ledger account names: one function so every writer spells them the same way. */
export const accounts = {
  /** Money received on-chain into the payee wallet (asset). */
  payeeWallet: (token: string) => `asset:payee_wallet:${token}`,
  /** What a payer has paid us and not yet consumed (liability to the payer). */
  payerPrepaid: (payer: string) => `liability:payer_prepaid:${payer}`,
  /** Revenue at actual usage cost. */
  usageRevenue: () => "revenue:usage",
  /** Paid estimate minus actual cost: the overhead margin kept on charge requests. */
  estimateVariance: () => "revenue:estimate_variance",
} as const;
