import "reflect-metadata";
import { randomBytes, randomUUID } from "node:crypto";
import type { INestApplicationContext } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { createTempoClients, tip20Abi } from "@worldrouter/chain";
import { loadConfig, type Config, type World } from "@worldrouter/config";
import { createPrismaClient, Prisma, type PrismaClient } from "@worldrouter/db";
import { deployWorld, startAnvil, type RunningAnvil } from "@worldrouter/devchain";
import { METRICS } from "@worldrouter/runtime";
import pg from "pg";
import type { Registry } from "prom-client";
import { createTestClient, http, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDatabase, migrate } from "../../../../prisma/migrate.mjs";
import { LedgerReportsRepository } from "../ops/ledger-reports.repository.js";
import { SettlementModule } from "../settlement.module.js";
import { ReconcileChainUseCase } from "./reconcile-chain.use-case.js";

/**
 * Continuous reconciliation on a real local chain: a database of its own (other files' charges come from other chains,
 * with the same dev payee and token addresses), a transfer to the payee the ledger does not know made on purpose.
 */
let anvil: RunningAnvil;
let world: World;
let config: Config;
let app: INestApplicationContext;
let db: PrismaClient;
let databaseUrl: string;

beforeAll(async () => {
  anvil = await startAnvil();
  world = await deployWorld(anvil.rpcUrl);
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `${url.pathname}_recon_${randomBytes(3).toString("hex")}`;
  databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  await migrate(databaseUrl, () => {});
  config = loadConfig({
    ...process.env,
    DATABASE_URL: databaseUrl,
    WORLD_FILE: "/nonexistent",
    CHAIN_RPC_URL: anvil.rpcUrl,
    CHAIN_ID: String(world.chainId),
    TOKEN_ADDRESS: world.token.address,
    PAYEE_ADDRESS: world.payee.address,
    PAYEE_PRIVATE_KEY: world.payee.privateKey,
    REDIS_NAMESPACE: `${process.env.REDIS_NAMESPACE}-recon`,
    RECONCILE_EVERY_SECONDS: "0", // passes run when the test says, not on a timer
    LOG_LEVEL: "silent",
  });
  app = await NestFactory.createApplicationContext(SettlementModule.forRoot(config), { logger: false });
  await app.init();
  db = createPrismaClient(databaseUrl);
}, 90_000);

afterAll(async () => {
  await app?.close();
  await db?.$disconnect();
  await anvil?.stop();
  if (databaseUrl) {
    const admin = new URL(databaseUrl);
    const name = admin.pathname.slice(1);
    admin.pathname = "/postgres";
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => client.end());
  }
});

const clients = () => createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address });

/** A plain token transfer from a world wallet to the payee, mined. */
async function transferToPayee(walletIndex: number, amount: bigint) {
  const { publicClient, walletClientFor } = clients();
  const wallet = walletClientFor(privateKeyToAccount(world.wallets[walletIndex]!.privateKey));
  const hash = await wallet.writeContract({
    address: world.token.address,
    abi: tip20Abi,
    functionName: "transfer",
    args: [world.payee.address, amount],
    gas: 500_000n,
  });
  const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
  return { hash, blockNumber: receipt.blockNumber, payer: world.wallets[walletIndex]!.address.toLowerCase() };
}

/** Records a transfer in the ledger as a consumed charge payment. */
async function recordCharge(transfer: { hash: Hex; blockNumber: bigint; payer: string }, amount: bigint) {
  await db.chargePayment.create({
    data: {
      challengeId: randomUUID(),
      txHash: transfer.hash.toLowerCase(),
      requestId: `req_${randomUUID()}`,
      payer: transfer.payer,
      recipient: world.payee.address.toLowerCase(),
      token: world.token.address.toLowerCase(),
      chainId: world.chainId,
      amount: new Prisma.Decimal(amount.toString()),
      blockNumber: transfer.blockNumber,
      status: "consumed",
    },
  });
}

/** Past the reconciliation lag, instantly. */
const mine = (blocks: number) =>
  createTestClient({ mode: "anvil", chain: clients().chain, transport: http(anvil.rpcUrl) }).mine({ blocks });

const openMismatches = () => db.reconciliationMismatch.findMany({ where: { resolvedAt: null }, orderBy: { id: "asc" } });
const metric = async () => {
  const text = await app.get<Registry>(METRICS).metrics();
  return Number(/^wr_reconciliation_mismatches_open(?:\{[^}]*\})? (\d+)$/m.exec(text)?.[1]);
};

describe("continuous reconciliation (real chain, Postgres, Redis)", () => {
  it("flags a transfer the ledger does not know, resumes from its cursor, and resolves once the ledger agrees", async () => {
    const use = app.get(ReconcileChainUseCase);
    const known = await transferToPayee(0, 120_000n);
    await recordCharge(known, 120_000n);
    const unknown = await transferToPayee(1, 77_000n); // the mismatch made on purpose
    await mine(40);

    const first = await use.reconcile();
    expect(first!.fromBlock).toBe(known.blockNumber); // a new stream starts at the ledger's oldest charge
    expect(first!.toBlock).toBeGreaterThanOrEqual(unknown.blockNumber);
    const open = await openMismatches();
    expect(open.map((m) => [m.kind, m.txHash])).toEqual([["charge_missing_in_ledger", unknown.hash.toLowerCase()]]);
    expect(await metric()).toBe(1);
    const cursor = await db.reconciliationCursor.findUniqueOrThrow({ where: { stream: use.stream } });
    expect(cursor.lastBlock).toBe(first!.toBlock);

    // Visible to ops through the read-only API.
    const reports = app.get(LedgerReportsRepository);
    const page = await reports.page("mismatches", { limit: 50, format: "json" });
    expect(page.items).toEqual([
      expect.objectContaining({ kind: "charge_missing_in_ledger", tx_hash: unknown.hash.toLowerCase(), resolved_at: null }),
    ]);
    const summary = await reports.summary(new Date(Date.now() - 3_600_000), new Date(Date.now() + 60_000), "hour");
    expect(summary.reconciliation.openMismatches).toBe(1);

    // A restarted replica resumes after the cursor: nothing is read twice, nothing is skipped.
    const restarted = await NestFactory.createApplicationContext(SettlementModule.forRoot(config), { logger: false });
    await restarted.init();
    try {
      const later = await transferToPayee(2, 5_000n);
      await mine(40);
      const second = await restarted.get(ReconcileChainUseCase).reconcile();
      expect(second!.fromBlock).toBe(first!.toBlock + 1n);
      expect(second!.toBlock).toBeGreaterThanOrEqual(later.blockNumber);
      expect((await openMismatches()).map((m) => m.txHash)).toEqual([unknown.hash.toLowerCase(), later.hash.toLowerCase()]);

      // The ledger learns both transfers (a late record): the next pass closes their rows.
      await recordCharge(unknown, 77_000n);
      await recordCharge(later, 5_000n);
      const third = await restarted.get(ReconcileChainUseCase).reconcile();
      expect(third!.resolved).toBe(2);
      expect(await openMismatches()).toEqual([]);
      expect(await metric()).toBe(0);
    } finally {
      await restarted.close();
    }
  });

  it("flags a recorded amount that differs from the chain's", async () => {
    const use = app.get(ReconcileChainUseCase);
    const transfer = await transferToPayee(3, 40_000n);
    await recordCharge(transfer, 41_000n);
    await mine(40);
    await use.reconcile();
    const open = await openMismatches();
    expect(open.map((m) => [m.kind, m.txHash, m.recorded?.toFixed(), m.onChain?.toFixed()])).toEqual([
      ["charge_amount", transfer.hash.toLowerCase(), "41000", "40000"],
    ]);
  });
});
