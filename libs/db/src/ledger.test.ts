import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  accountBalance,
  createPgPool,
  createPrismaClient,
  ledgerPostingCtes,
  postingParams,
  postLedgerTransaction,
  UnbalancedLedgerTransactionError,
  type PgPool,
  type PrismaClient,
} from "./index.js";

let db: PrismaClient;
let pool: PgPool;
beforeAll(() => {
  pool = createPgPool(process.env.DATABASE_URL!);
  db = createPrismaClient(pool);
});
afterAll(async () => {
  await db.$disconnect();
  await pool.end();
});

const unique = () => `${Date.now()}-${Math.random().toString(36).slice(2)}`;

describe("ledger", () => {
  it("posts a balanced transaction once per idempotency key", async () => {
    const key = `test-${unique()}`;
    const posting = {
      kind: "test",
      reference: key,
      idempotencyKey: key,
      lines: [
        { account: `a:${key}`, amount: 150n },
        { account: `b:${key}`, amount: -100n },
        { account: `c:${key}`, amount: -50n },
      ],
    };
    expect(await postLedgerTransaction(db, posting)).toBe(true);
    expect(await postLedgerTransaction(db, posting)).toBe(false);
    expect(await accountBalance(db, `a:${key}`)).toBe(150n);
    expect(await accountBalance(db, `c:${key}`)).toBe(-50n);
  });

  it("refuses an unbalanced transaction before touching the database", async () => {
    const key = `test-${unique()}`;
    await expect(
      postLedgerTransaction(db, {
        kind: "test",
        reference: key,
        idempotencyKey: key,
        lines: [
          { account: "a", amount: 1n },
          { account: "b", amount: -2n },
        ],
      }),
    ).rejects.toBeInstanceOf(UnbalancedLedgerTransactionError);
    expect(await db.ledgerTransaction.count({ where: { idempotencyKey: key } })).toBe(0);
  });

  it("passes a posting's lines as two arrays, zero lines dropped", () => {
    const posting = {
      kind: "k",
      reference: "r",
      idempotencyKey: "i",
      lines: [
        { account: "a", amount: 5n },
        { account: "v", amount: 0n },
        { account: "b", amount: -5n },
      ],
    };
    expect(postingParams(posting)).toEqual(["k", "r", "i", ["a", "b"], ["5", "-5"]]);
  });

  it("a posting composed into a caller's statement is written only when its condition yields a row, and once", async () => {
    const statement = `WITH due AS (SELECT WHERE $6::boolean), ${ledgerPostingCtes("due", 1)} SELECT count(*)::int AS "lines" FROM ledger_lines`;
    const key = `cte-${unique()}`;
    const params = postingParams({
      kind: "test",
      reference: key,
      idempotencyKey: key,
      lines: [
        { account: `a:${key}`, amount: 3n },
        { account: `b:${key}`, amount: -3n },
      ],
    });
    const run = async (due: boolean) => (await pool.query<{ lines: number }>(statement, [...params, due])).rows[0]!.lines;
    expect(await run(false)).toBe(0);
    expect(await run(true)).toBe(2);
    expect(await run(true)).toBe(0);
    expect(await accountBalance(db, `a:${key}`)).toBe(3n);
  });

  it("the database itself rejects an unbalanced transaction at commit (zero-sum invariant)", async () => {
    const key = `raw-${unique()}`;
    const attempt = db.$transaction(async (tx) => {
      const [row] = await tx.$queryRaw<
        { id: string }[]
      >`INSERT INTO "ledger_transactions" ("id","kind","reference","idempotencyKey") VALUES (gen_random_uuid(),'test','raw',${key}) RETURNING "id"`;
      await tx.$executeRaw`INSERT INTO "ledger_entries" ("transactionId","account","amount") VALUES (${row!.id}::uuid,'a',100),(${row!.id}::uuid,'b',-99)`;
    });
    await expect(attempt).rejects.toThrow(/unbalanced: 2 lines summing to 1/);
    expect(await db.ledgerTransaction.count({ where: { idempotencyKey: key } })).toBe(0);
  });

  it("the database rejects a transaction without lines and a single-line one", async () => {
    const key = `raw-${unique()}`;
    await expect(
      db.$executeRaw`INSERT INTO "ledger_transactions" ("id","kind","reference","idempotencyKey") VALUES (gen_random_uuid(),'test','raw',${key})`,
    ).rejects.toThrow(/has no entries/);
    const attempt = db.$transaction(async (tx) => {
      const [row] = await tx.$queryRaw<
        { id: string }[]
      >`INSERT INTO "ledger_transactions" ("id","kind","reference","idempotencyKey") VALUES (gen_random_uuid(),'test','raw',${key}) RETURNING "id"`;
      await tx.$executeRaw`INSERT INTO "ledger_entries" ("transactionId","account","amount") VALUES (${row!.id}::uuid,'a',5)`;
    });
    await expect(attempt).rejects.toThrow(/unbalanced: 1 lines/);
  });

  it("ledger rows are append-only", async () => {
    const key = `test-${unique()}`;
    await postLedgerTransaction(db, {
      kind: "test",
      reference: key,
      idempotencyKey: key,
      lines: [
        { account: "x", amount: 7n },
        { account: "y", amount: -7n },
      ],
    });
    await expect(db.$executeRaw`UPDATE "ledger_entries" SET "amount" = 8 WHERE "account" = 'x'`).rejects.toThrow(/append-only/);
    await expect(db.$executeRaw`DELETE FROM "ledger_transactions" WHERE "idempotencyKey" = ${key}`).rejects.toThrow(/append-only/);
  });
});

describe("schema checks", () => {
  it("refuses mixed-case addresses and negative amounts", async () => {
    const base = {
      challengeId: unique(),
      requestId: unique(),
      recipient: `0x${"b".repeat(40)}`,
      token: `0x${"c".repeat(40)}`,
      chainId: 4217,
      status: "verified" as const,
    };
    await expect(
      db.chargePayment.create({ data: { ...base, txHash: `0x${"A".repeat(64)}`, payer: `0x${"a".repeat(40)}`, amount: "1" } }),
    ).rejects.toThrow(/hash32/);
    await expect(
      db.chargePayment.create({ data: { ...base, txHash: `0x${"1".repeat(64)}`, payer: `0x${"a".repeat(40)}`, amount: "-1" } }),
    ).rejects.toThrow(/token_amount/);
  });
});
