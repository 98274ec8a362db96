import "reflect-metadata";
import { randomBytes, randomUUID } from "node:crypto";
import type { INestApplicationContext } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { createTempoClients, tip20Abi } from "@worldrouter/chain";
import { loadConfig, type World } from "@worldrouter/config";
import { accountBalance, createPrismaClient, Prisma, type PrismaClient } from "@worldrouter/db";
import { deployWorld, startAnvil, type RunningAnvil } from "@worldrouter/devchain";
import { newRequestId } from "@worldrouter/observability";
import { METRICS } from "@worldrouter/runtime";
import type { Registry } from "prom-client";
import type { Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PayeeWallet } from "../chain/payee-wallet.js";
import { SettlementModule } from "../settlement.module.js";
import { RefundChargeUseCase } from "./refund-charge.use-case.js";

/**
 * Refunds on a real local Tempo chain, with two settlement replicas (two Nest apps, one Redis, one Postgres) and
 * the crash windows a replica can leave behind (a stored transaction never broadcast, or broadcast and never
 * confirmed in the ledger).
 */
let anvil: RunningAnvil;
let world: World;
let replicas: INestApplicationContext[] = [];
let db: PrismaClient;

beforeAll(async () => {
  anvil = await startAnvil();
  world = await deployWorld(anvil.rpcUrl);
  const config = loadConfig({
    ...process.env,
    WORLD_FILE: "/nonexistent",
    CHAIN_RPC_URL: anvil.rpcUrl,
    CHAIN_ID: String(world.chainId),
    TOKEN_ADDRESS: world.token.address,
    PAYEE_ADDRESS: world.payee.address,
    PAYEE_PRIVATE_KEY: world.payee.privateKey,
    // Other test files share the run's database: keep this file's queues apart and its sweeps off their payments.
    REDIS_NAMESPACE: `${process.env.REDIS_NAMESPACE}-refunds`,
    ORPHANED_PAYMENT_MINUTES: "1000000",
    LOG_LEVEL: "silent",
  });
  replicas = await Promise.all(
    [0, 1].map(async () => {
      const app = await NestFactory.createApplicationContext(SettlementModule.forRoot(config), { logger: false });
      await app.init();
      return app;
    }),
  );
  db = createPrismaClient(config.databaseUrl);
}, 60_000);

afterAll(async () => {
  for (const app of replicas) await app.close();
  await db?.$disconnect();
  await anvil?.stop();
});

/** What a replica leaves when it dies after signing a refund and storing it (status `submitted`), before or after the broadcast. */
async function storeSignedRefund(payment: { id: string; amount: Prisma.Decimal }, payer: string, amount: bigint) {
  const wallet = replicas[0]!.get(PayeeWallet);
  const nonce = await wallet.pendingNonce();
  const signed = await wallet.signTokenTransfer(payer as Hex, amount, `worldrouter:refund:${payment.id}`, nonce);
  await db.settlement.create({
    data: {
      kind: "refund",
      chainId: world.chainId,
      amount: payment.amount,
      chargePaymentId: payment.id,
      status: "submitted",
      txHash: signed.txHash,
      rawTransaction: signed.rawTransaction,
      nonce,
    },
  });
  return { nonce, signed };
}

const clients = () => createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address });
const balance = (address: string) =>
  clients().publicClient.readContract({ address: world.token.address, abi: tip20Abi, functionName: "balanceOf", args: [address as Hex] });

async function refundingPayment(payer: string, amount: bigint) {
  return db.chargePayment.create({
    data: {
      challengeId: randomUUID(),
      txHash: `0x${randomBytes(32).toString("hex")}`,
      requestId: newRequestId(),
      payer,
      recipient: world.payee.address,
      token: world.token.address,
      chainId: world.chainId,
      amount: new Prisma.Decimal(amount.toString()),
      status: "refunding",
    },
  });
}

const refundRow = (paymentId: string) =>
  db.settlement.findUniqueOrThrow({ where: { kind_chargePaymentId: { kind: "refund", chargePaymentId: paymentId } } });

describe("refunds with two settlement replicas (real chain, Redis, Postgres)", () => {
  it("each refund is paid exactly once when both replicas run every refund at the same time", async () => {
    const amount = 250_000n;
    const payers = world.wallets.slice(0, 4).map((w) => w.address);
    const before = await Promise.all(payers.map(balance));
    const payments = await Promise.all(payers.map((payer) => refundingPayment(payer, amount)));

    const outcomes = await Promise.all(payments.flatMap((p) => replicas.map((app) => app.get(RefundChargeUseCase).refund(p.id))));
    expect(outcomes).toEqual(Array(8).fill("refunded"));

    const after = await Promise.all(payers.map(balance));
    after.forEach((b, i) => expect(b).toBe(before[i]! + amount));
    const rows = await Promise.all(payments.map((p) => refundRow(p.id)));
    expect(rows.map((r) => r.status)).toEqual(Array(4).fill("confirmed"));
    expect(new Set(rows.map((r) => r.nonce)).size).toBe(4); // one signer at a time: no nonce signed twice
    for (const p of payments) {
      expect((await db.chargePayment.findUniqueOrThrow({ where: { id: p.id } })).status).toBe("refunded");
      expect(await db.ledgerTransaction.count({ where: { reference: p.id, kind: "charge.refund" } })).toBe(1);
    }
  });

  it("a stored transaction whose nonce another transaction used is signed anew, and paid once", async () => {
    const payer = world.wallets[0]!.address;
    const amount = 300_000n;
    const payment = await refundingPayment(payer, amount);
    const wallet = replicas[0]!.get(PayeeWallet);
    // A replica signed and stored the refund, then died before broadcasting it…
    const { nonce, signed: lost } = await storeSignedRefund(payment, payer, amount);
    // …and the payee's next transaction took that nonce.
    const other = await refundingPayment(world.wallets[1]!.address, amount);
    expect(await replicas[1]!.get(RefundChargeUseCase).refund(other.id)).toBe("refunded");
    expect((await refundRow(other.id)).nonce).toBe(nonce);

    const before = await balance(payer);
    expect(await replicas[0]!.get(RefundChargeUseCase).refund(payment.id)).toBe("refunded");
    expect(await balance(payer)).toBe(before + amount);
    const row = await refundRow(payment.id);
    expect(row.txHash).not.toBe(lost.txHash);
    expect(row.nonce).toBeGreaterThan(nonce);
    expect(await wallet.receipt(lost.txHash)).toBeNull();
  });

  it("a refund broadcast before a crash is confirmed from its receipt, not sent again", async () => {
    const payer = world.wallets[2]!.address;
    const amount = 400_000n;
    const payment = await refundingPayment(payer, amount);
    const wallet = replicas[0]!.get(PayeeWallet);
    const { signed } = await storeSignedRefund(payment, payer, amount);
    const before = await balance(payer);
    expect(await wallet.broadcast(signed.rawTransaction)).toBe("accepted");
    await expect.poll(() => wallet.receipt(signed.txHash), { timeout: 20_000 }).not.toBeNull();

    expect(await replicas[1]!.get(RefundChargeUseCase).refund(payment.id)).toBe("refunded");
    expect(await replicas[0]!.get(RefundChargeUseCase).refund(payment.id)).toBe("refunded");
    expect(await balance(payer)).toBe(before + amount);
    expect((await refundRow(payment.id)).txHash).toBe(signed.txHash);
  });

  it("a refund smaller than its gas is not sent: booked as dust, the payment ends kept_as_dust", async () => {
    const payer = world.wallets[3]!.address;
    const payment = await refundingPayment(payer, 3n);
    const before = await balance(payer);
    expect(await replicas[0]!.get(RefundChargeUseCase).refund(payment.id)).toBe("kept_as_dust");
    expect(await replicas[1]!.get(RefundChargeUseCase).refund(payment.id)).toBe("kept_as_dust");

    expect(await balance(payer)).toBe(before);
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("kept_as_dust");
    expect(await db.settlement.count({ where: { chargePaymentId: payment.id } })).toBe(0);
    const lines = await db.ledgerEntry.findMany({ where: { transaction: { reference: payment.id } } });
    expect(Object.fromEntries(lines.map((l) => [l.account, l.amount.toFixed()]))).toEqual({
      [`liability:payer_prepaid:${payer}`]: "3",
      "revenue:refund_dust": "-3",
    });
    expect(await accountBalance(db, "revenue:refund_dust")).toBeLessThanOrEqual(-3n);
  });

  it("a refund that cannot finish is marked failed with its error after its last attempt, and counted as stuck", async () => {
    // More than the payee holds: the simulation refuses it before anything is signed.
    const payment = await refundingPayment(world.wallets[4]!.address, 10n ** 15n);
    const refunds = replicas[0]!.get(RefundChargeUseCase);
    await expect(refunds.refund(payment.id)).rejects.toThrow();
    expect(await refundRow(payment.id)).toMatchObject({ status: "pending", txHash: null, error: expect.any(String) });

    await expect(refunds.refund(payment.id, { finalAttempt: true })).rejects.toThrow();
    const row = await refundRow(payment.id);
    expect(row.status).toBe("failed");
    expect(row.error!.length).toBeGreaterThan(0);
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).status).toBe("refunding");
    const metrics = await replicas[1]!.get<Registry>(METRICS).getSingleMetricAsString("wr_refunds_stuck");
    expect(metrics).toMatch(/^wr_refunds_stuck\{service="settlement"\} [1-9]/m);
  });
});
