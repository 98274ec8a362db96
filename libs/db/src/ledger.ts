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
 * A posting's statement parameters, in the order `ledgerPostingCtes` numbers them: kind, reference,
 * idempotency key, then its lines as two arrays (accounts, amounts as decimal strings). Zero lines are
 * dropped (a variance of 0 is not an entry). Balance is checked here for a clear error and again by the
 * database at commit (deferred trigger), which is the real guarantee.
 */
export function postingParams(
  posting: LedgerPosting,
): [kind: string, reference: string, idempotencyKey: string, accounts: string[], amounts: string[]] {
  const lines = posting.lines.filter((l) => l.amount !== 0n);
  const sum = lines.reduce((s, l) => s + l.amount, 0n);
  if (lines.length < 2 || sum !== 0n) {
    throw new UnbalancedLedgerTransactionError(
      `ledger transaction ${posting.idempotencyKey} is unbalanced: ${lines.length} lines summing to ${sum}`,
    );
  }
  return [posting.kind, posting.reference, posting.idempotencyKey, lines.map((l) => l.account), lines.map((l) => l.amount.toString())];
}

/**
 * The ledger half of a single-statement write: CTEs `ledger_header` and `ledger_lines` (name them last in
 * the caller's WITH list) insert one posting when the CTE or table named `when` yields a row, and nothing
 * when its idempotency key was already posted. `$first`…`$first+4` are `postingParams(posting)`.
 * One statement commits atomically without BEGIN/COMMIT, so the effect and its posting cannot part.
 */
export function ledgerPostingCtes(when: string, first: number): string {
  return `ledger_header AS (
    INSERT INTO "ledger_transactions" ("id", "kind", "reference", "idempotencyKey")
    SELECT gen_random_uuid(), $${first}::text, $${first + 1}::text, $${first + 2}::text FROM ${when}
    ON CONFLICT ("idempotencyKey") DO NOTHING RETURNING "id"),
  ledger_lines AS (
    INSERT INTO "ledger_entries" ("transactionId", "account", "amount")
    SELECT ledger_header."id", line.account, line.amount
    FROM ledger_header, unnest($${first + 3}::text[], $${first + 4}::numeric[]) AS line(account, amount)
    RETURNING "transactionId")`;
}

/** One posting of a batch, written only if the statement takes the claim `gate` (an event's idempotency key). */
export interface GatedPosting {
  gate: string;
  posting: LedgerPosting;
}

/**
 * A batch's statement parameters, in the order `ledgerBatchPostingCtes` numbers them: per posting its kind,
 * reference, idempotency key and gate; then every line as (posting number from 1, account, amount). Each posting
 * is checked as `postingParams` checks one.
 */
export function batchPostingParams(
  postings: GatedPosting[],
): [
  kinds: string[],
  references: string[],
  idempotencyKeys: string[],
  gates: string[],
  lineOf: number[],
  accounts: string[],
  amounts: string[],
] {
  const out: ReturnType<typeof batchPostingParams> = [[], [], [], [], [], [], []];
  for (const [index, { gate, posting }] of postings.entries()) {
    const [kind, reference, key, accounts, amounts] = postingParams(posting);
    out[0].push(kind);
    out[1].push(reference);
    out[2].push(key);
    out[3].push(gate);
    for (let i = 0; i < accounts.length; i++) {
      out[4].push(index + 1);
      out[5].push(accounts[i]!);
      out[6].push(amounts[i]!);
    }
  }
  return out;
}

/**
 * The multi-row `ledgerPostingCtes`: CTEs `ledger_postings`, `ledger_header` and `ledger_lines` (name them last)
 * insert each posting whose gate is among the `"key"`s the CTE `claims` returned (the claims this statement took),
 * none whose idempotency key was already posted. `$first`…`$first+6` are `batchPostingParams(postings)`.
 */
export function ledgerBatchPostingCtes(claims: string, first: number): string {
  return `ledger_postings AS (
    SELECT p.* FROM unnest($${first}::text[], $${first + 1}::text[], $${first + 2}::text[], $${first + 3}::text[]) WITH ORDINALITY
      AS p("kind", "reference", "idempotencyKey", "gate", "n")
    WHERE p."gate" IN (SELECT "key" FROM ${claims})),
  ledger_header AS (
    INSERT INTO "ledger_transactions" ("id", "kind", "reference", "idempotencyKey")
    SELECT gen_random_uuid(), "kind", "reference", "idempotencyKey" FROM ledger_postings
    ON CONFLICT ("idempotencyKey") DO NOTHING RETURNING "id", "idempotencyKey"),
  ledger_lines AS (
    INSERT INTO "ledger_entries" ("transactionId", "account", "amount")
    SELECT ledger_header."id", line."account", line."amount"
    FROM unnest($${first + 4}::int[], $${first + 5}::text[], $${first + 6}::numeric[]) AS line("n", "account", "amount")
    JOIN ledger_postings ON ledger_postings."n" = line."n"
    JOIN ledger_header ON ledger_header."idempotencyKey" = ledger_postings."idempotencyKey"
    RETURNING "transactionId")`;
}

const POST_LEDGER_TRANSACTION = `WITH always AS (SELECT 1), ${ledgerPostingCtes("always", 1)} SELECT count(*)::int AS "lines" FROM ledger_lines`;

/** Writes one balanced ledger transaction. Returns false when the idempotency key was already posted. */
export async function postLedgerTransaction(db: Db, posting: LedgerPosting): Promise<boolean> {
  // A constant statement with bound parameters (the `Unsafe` variant only because the text is composed).
  const rows = await db.$queryRawUnsafe<{ lines: number }[]>(POST_LEDGER_TRANSACTION, ...postingParams(posting));
  return (rows[0]?.lines ?? 0) > 0;
}

/** Sum of an account's entries (debits positive). */
export async function accountBalance(db: Db, account: string): Promise<bigint> {
  const rows = await db.$queryRaw<
    { total: string }[]
  >`SELECT COALESCE(SUM("amount"), 0)::text AS total FROM "ledger_entries" WHERE "account" = ${account}`;
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
  /** Refunds kept because sending them would have cost more gas than they return. */
  refundDust: () => "revenue:refund_dust",
  /** Session deposits held in channel escrows on-chain, not yet captured or refunded (asset). */
  channelEscrow: (token: string) => `asset:channel_escrow:${token}`,
  /** What a channel's payer has deposited and not yet spent (liability to the payer). */
  channelDeposit: (channelId: string) => `liability:channel_deposit:${channelId}`,
} as const;
