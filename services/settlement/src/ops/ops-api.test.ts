import "reflect-metadata";
import { randomBytes, randomUUID } from "node:crypto";
import { NestFactory } from "@nestjs/core";
import { FastifyAdapter, type NestFastifyApplication } from "@nestjs/platform-fastify";
import { loadConfig } from "@worldrouter/config";
import { deduplicationId } from "@worldrouter/contracts";
import { createPrismaClient, Prisma, type PrismaClient } from "@worldrouter/db";
import { JobQueues } from "@worldrouter/runtime";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SettlementModule } from "../settlement.module.js";

type Body = any;
const hex = (bytes: number) => `0x${randomBytes(bytes).toString("hex")}`;
const TOKEN = "ops-test-token-0123456789abcdef";

describe("ops API (real Postgres through the read-only role, real HTTP)", () => {
  let app: NestFastifyApplication;
  let db: PrismaClient;
  let base: string;
  const config = loadConfig({
    ...process.env,
    WORLD_FILE: "/nonexistent",
    PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
    LOG_LEVEL: "silent",
    OPS_TOKEN: TOKEN,
  });
  // A window of its own in the past: other test files write to the same database at the same time.
  const day = new Date(Date.UTC(2001 + Math.floor(Math.random() * 20), Math.floor(Math.random() * 12), 3));
  const at = (minutes: number) => new Date(day.getTime() + minutes * 60_000);
  const api = (path: string, init: RequestInit = {}, token = TOKEN) =>
    fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });

  async function charge(p: {
    payer: string;
    amount: bigint;
    status: "consumed" | "refunding" | "refunded";
    minute: number;
    actual?: bigint;
    model?: string;
  }) {
    const requestId = `req_${randomUUID()}`;
    const payment = await db.chargePayment.create({
      data: {
        challengeId: randomUUID(),
        txHash: hex(32),
        requestId,
        payer: p.payer,
        recipient: config.chain.payee!,
        token: config.chain.token,
        chainId: 4217,
        amount: new Prisma.Decimal(p.amount.toString()),
        status: p.status,
        createdAt: at(p.minute),
      },
    });
    await db.inferenceRequest.create({
      data: {
        id: requestId,
        intent: "charge",
        model: p.model ?? "gpt-4o-mini",
        provider: "openai",
        payer: p.payer,
        chargePaymentId: payment.id,
        status: p.status === "consumed" ? "succeeded" : "failed",
        estimatedCost: new Prisma.Decimal(p.amount.toString()),
        chargedCost: new Prisma.Decimal(p.amount.toString()),
        actualCost: p.actual === undefined ? null : new Prisma.Decimal(p.actual.toString()),
        createdAt: at(p.minute),
      },
    });
    return payment;
  }

  beforeAll(async () => {
    app = await NestFactory.create<NestFastifyApplication>(SettlementModule.forRoot(config), new FastifyAdapter(), { logger: false });
    await app.listen(0, "127.0.0.1");
    base = (await app.getUrl()).replace("[::1]", "127.0.0.1");
    db = createPrismaClient(config.databaseUrl);
  });
  afterAll(async () => {
    await app?.close();
    await db?.$disconnect();
  });

  it("refuses a missing or wrong token with 401 problem+json, and leaves the OpenAPI document public", async () => {
    const attempts: Record<string, string>[] = [{}, { authorization: "Bearer wrong-token" }, { authorization: `Basic ${TOKEN}` }];
    for (const headers of attempts) {
      const res = await fetch(`${base}/ops/api/summary`, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
      expect((await res.json()) as Body).toMatchObject({ type: "https://worldrouter.dev/problems/ops-unauthorized", status: 401 });
    }
    const doc = (await (await fetch(`${base}/ops/openapi.json`)).json()) as Body;
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/ops/api/summary", "/ops/api/payments", "/ops/api/refunds/{paymentId}/retry"]),
    );
  });

  it("sums revenue, estimated vs charged vs actual cost and margin per model over a range, by minute", async () => {
    const alice = hex(20);
    const bob = hex(20);
    await charge({ payer: alice, amount: 3000n, actual: 1000n, status: "consumed", minute: 1 });
    await charge({ payer: alice, amount: 5000n, actual: 4500n, status: "consumed", minute: 1, model: "claude-sonnet-4-5" });
    await charge({ payer: bob, amount: 2500n, actual: 500n, status: "consumed", minute: 3 });
    await charge({ payer: bob, amount: 9000n, status: "refunded", minute: 3 });
    const res = await api(`/ops/api/summary?from=${at(0).toISOString()}&to=${at(10).toISOString()}&granularity=minute`);
    expect(res.status).toBe(200);
    const summary = (await res.json()) as Body;
    expect(summary.totals).toEqual({
      requests: 4,
      billedRequests: 3,
      revenue: "10500",
      estimatedCost: "10500",
      actualCost: "6000",
      margin: "4500",
      variance: "4500",
      payers: 2,
    });
    expect(summary.series.map((b: { bucket: string; requests: number; revenue: string }) => [b.bucket, b.requests, b.revenue])).toEqual([
      [at(1).toISOString(), 2, "8000"],
      [at(3).toISOString(), 2, "2500"],
    ]);
    expect(summary.byModel.find((m: { model: string }) => m.model === "gpt-4o-mini")).toMatchObject({
      revenue: "5500",
      actual: "1500",
      margin: "4000",
    });
    expect(summary.topPayers[0]).toMatchObject({ payer: alice, revenue: "8000" });
    expect(summary.refunds.byStatus).toEqual([{ status: "refunded", count: 1, amount: "9000" }]);
    expect(summary.payments).toEqual(expect.arrayContaining([expect.objectContaining({ status: "consumed", count: 3, amount: "10500" })]));

    const hourly = (await (
      await api(`/ops/api/summary?from=${at(0).toISOString()}&to=${at(120).toISOString()}&granularity=hour`)
    ).json()) as Body;
    expect(hourly.series).toHaveLength(1);
    expect(hourly.totals.revenue).toBe("10500");

    const bad = await api(`/ops/api/summary?from=${at(0).toISOString()}&to=${at(100_000).toISOString()}&granularity=minute`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Body).detail).toMatch(/coarser granularity/);
    expect((await api("/ops/api/summary?granularity=week")).status).toBe(400);
    expect((await api("/ops/api/summary?colour=red")).status).toBe(400);
  });

  it("pages a list by keyset with filters, exports it as CSV and shows one payer", async () => {
    const payer = hex(20);
    const made = [];
    for (let i = 0; i < 7; i++)
      made.push(await charge({ payer, amount: 2500n + BigInt(i), actual: 100n, status: "consumed", minute: 20 + (i % 3) }));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await api(
        `/ops/api/payments?payer=${payer.toUpperCase().replace("0X", "0x")}&limit=3${cursor ? `&cursor=${cursor}` : ""}`,
      );
      expect(res.status).toBe(200);
      const page: { items: { id: string; payer: string; created_at: string }[]; nextCursor: string | null } = (await res.json()) as Body;
      for (const item of page.items) expect(item.payer).toBe(payer);
      seen.push(...page.items.map((i) => i.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(7);
    expect(seen.sort()).toEqual(made.map((m) => m.id).sort());

    const requests = (await (await api(`/ops/api/requests?payer=${payer}&model=gpt-4o-mini&limit=500`)).json()) as Body;
    expect(requests.items).toHaveLength(7);
    expect(requests.items[0]).toMatchObject({ billed: true, actual_cost: "100", payment_status: "consumed" });

    const csv = await api(`/ops/api/payments?payer=${payer}&format=csv`);
    expect(csv.headers.get("content-type")).toContain("text/csv");
    const lines = (await csv.text()).trim().split("\r\n");
    expect(lines[0]).toBe("id,created_at,payer,amount,status,tx_hash,block_number,request_id,served_request_id");
    expect(lines).toHaveLength(8);

    const profile = (await (await api(`/ops/api/payers/${payer}`)).json()) as Body;
    expect(profile).toMatchObject({ payer, requests: 7, spent: String(7 * 2500 + 21), payments: [{ status: "consumed", count: 7 }] });
    expect((await api(`/ops/api/payers/${hex(20)}`)).status).toBe(404);

    for (const query of ["payments?model=x", "payments?limit=0", "payments?cursor=nope", "payments?payer=0x12", "nothing"]) {
      const res = await api(`/ops/api/${query}`);
      expect([400, 404]).toContain(res.status);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
    }
  });

  it("reads through a role that can read the reporting views and nothing else", async () => {
    const reader = new pg.Client({ connectionString: config.ops.readerDatabaseUrl });
    await reader.connect();
    try {
      await expect(reader.query(`SELECT count(*) FROM reporting.payments`)).resolves.toBeDefined();
      await expect(reader.query(`SELECT count(*) FROM "charge_payments"`)).rejects.toThrow(/permission denied/);
      await expect(
        reader.query(`INSERT INTO "ops_actions" ("action","target","idempotencyKey","actor","outcome") VALUES ('x','x','x','x','x')`),
      ).rejects.toThrow(/permission denied|read-only/);
    } finally {
      await reader.end();
    }
  });

  it("retries a failed refund once per idempotency key, audited, and refuses one that has not failed", async () => {
    const payer = hex(20);
    const payment = await charge({ payer, amount: 7000n, status: "refunding", minute: 40 });
    await db.settlement.create({
      data: {
        kind: "refund",
        chainId: 4217,
        amount: payment.amount,
        chargePaymentId: payment.id,
        status: "failed",
        error: "RpcError: gave up",
      },
    });
    const stuck = (await (await api(`/ops/api/refunds?payer=${payer}`)).json()) as Body;
    expect(stuck.items).toEqual([expect.objectContaining({ payment_id: payment.id, status: "failed", error: "RpcError: gave up" })]);

    const key = `retry-${randomUUID()}`;
    const first = await api(`/ops/api/refunds/${payment.id}/retry`, { method: "POST", headers: { "idempotency-key": key } });
    expect(first.status).toBe(201);
    expect((await first.json()) as Body).toMatchObject({ action: "refund.retry", target: payment.id, outcome: "queued", performed: true });
    const again = await api(`/ops/api/refunds/${payment.id}/retry`, { method: "POST", headers: { "idempotency-key": key } });
    expect((await again.json()) as Body).toMatchObject({ performed: false, target: payment.id });

    const row = await db.settlement.findFirstOrThrow({ where: { chargePaymentId: payment.id, kind: "refund" } });
    expect(row.status).not.toBe("failed");
    expect(await db.opsAction.count({ where: { target: payment.id } })).toBe(1);
    const queue = app.get(JobQueues).queue("settlement");
    const job = await queue.getDeduplicationJobId(deduplicationId.settlement({ kind: "refund", reference: payment.id, requestedAt: 0 }));
    expect(job).toBeTruthy();

    const conflict = await api(`/ops/api/refunds/${payment.id}/retry`, { method: "POST" });
    expect(conflict.status).toBe(409);
    expect((await api(`/ops/api/refunds/${randomUUID()}/retry`, { method: "POST" })).status).toBe(404);
    expect((await api(`/ops/api/refunds/not-a-uuid/retry`, { method: "POST" })).status).toBe(400);
    const actions = (await (await api(`/ops/api/actions?target=${payment.id}`)).json()) as Body;
    expect(actions.items).toEqual([expect.objectContaining({ action: "refund.retry", actor: "ops-token" })]);
  });
});
