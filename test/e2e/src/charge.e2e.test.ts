import { Receipt } from "mppx";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mppxClient, startTestSystem, tokenBalance } from "./harness.js";

let system: Awaited<ReturnType<typeof startTestSystem>>;
let db: pg.Client;

beforeAll(async () => {
  system = await startTestSystem();
  db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
}, 180_000);

afterAll(async () => {
  await db?.end();
  await system?.stop();
});

const body = (content = "Say hello", extra: Record<string, unknown> = {}) => JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], ...extra });
const post = (init: RequestInit & { body: string }, path = "/x402/v1/chat/completions") =>
  fetch(`${system.gatewayUrl}${path}`, { method: "POST", headers: { "content-type": "application/json", ...(init.headers as Record<string, string>) }, ...init });

describe("charge intent", () => {
  it("answers an unpaid request with a 402 challenge priced from the prompt, writing nothing", async () => {
    const before = await db.query(`SELECT count(*)::int AS n FROM "charge_payments"`);
    const response = await post({ body: body() });
    expect(response.status).toBe(402);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    const challenge = response.headers.get("www-authenticate")!;
    expect(challenge).toMatch(/^Payment id="[^"]+", realm="127\.0\.0\.1:\d+", method="tempo", intent="charge", request="[^"]+"/);
    expect(challenge).toMatch(/digest="sha-256=/);
    const problem = await response.json();
    expect(problem).toMatchObject({ type: "https://paymentauth.org/problems/payment-required", status: 402, price: { model: "gpt-4o-mini", currency: system.world.token.address } });
    expect(BigInt(problem.price.amount)).toBeGreaterThan(0n);
    expect((await db.query(`SELECT count(*)::int AS n FROM "charge_payments"`)).rows[0].n).toBe(before.rows[0].n);
  });

  for (const mode of ["pull", "push"] as const) {
    it(`an unmodified mppx client pays (${mode === "pull" ? "transaction, fee-sponsored" : "hash"} mode) and gets a completion with a receipt`, async () => {
      const { mppx, account } = mppxClient(system.world, mode === "pull" ? 0 : 1, mode);
      const payerBefore = await tokenBalance(system.world, account.address);
      const payeeBefore = await tokenBalance(system.world, system.world.payee.address);
      const response = await mppx.fetch(`${system.gatewayUrl}/x402/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: body(`hello from ${mode}`) });
      const text = await response.text();
      expect(response.status, text).toBe(200);
      const completion = JSON.parse(text);
      expect(completion.object).toBe("chat.completion");
      expect(completion.choices[0].message.content.length).toBeGreaterThan(0);
      const receipt = Receipt.deserialize(response.headers.get("payment-receipt")!);
      expect(receipt).toMatchObject({ method: "tempo", status: "success" });
      const requestId = response.headers.get("x-request-id")!;
      const { rows } = await db.query(`SELECT * FROM "charge_payments" WHERE "requestId" = $1`, [requestId]);
      expect(rows).toHaveLength(1);
      expect(rows[0].txHash).toBe(receipt.reference.toLowerCase());
      expect(rows[0].payer).toBe(account.address.toLowerCase());
      const paid = BigInt(rows[0].amount);
      expect(await tokenBalance(system.world, system.world.payee.address)).toBe(payeeBefore + paid);
      // Sponsored (pull) mode: the payer pays exactly the amount, no gas. Push mode: the payer pays its own gas in the token.
      if (mode === "pull") expect(await tokenBalance(system.world, account.address)).toBe(payerBefore - paid);
      else expect(await tokenBalance(system.world, account.address)).toBeLessThan(payerBefore - paid + 1n);
    });
  }
});
