import { Receipt } from "mppx";
import { validate } from "mppx/discovery";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { mppxClient, useTestSystem, tokenBalance } from "./harness.js";

const e2e = useTestSystem();

const body = (content = "Say hello", extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], ...extra });
const post = (init: RequestInit & { body: string }, path = "/x402/v1/chat/completions") =>
  fetch(`${e2e.system.gatewayUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(init.headers as Record<string, string>) },
    ...init,
  });

describe("charge intent", () => {
  it("answers an unpaid request with a 402 challenge priced from the prompt, writing nothing", async () => {
    const before = await e2e.db.query(`SELECT count(*)::int AS n FROM "charge_payments"`);
    const response = await post({ body: body() });
    expect(response.status).toBe(402);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    const challenge = response.headers.get("www-authenticate")!;
    expect(challenge).toMatch(/^Payment id="[^"]+", realm="127\.0\.0\.1", method="tempo", intent="charge", request="[^"]+"/);
    expect(challenge).toMatch(/digest="sha-256=/);
    const problem = (await response.json()) as any;
    expect(problem).toMatchObject({
      type: "https://paymentauth.org/problems/payment-required",
      status: 402,
      price: { model: "gpt-4o-mini", currency: e2e.system.world.token.address },
    });
    expect(BigInt(problem.price.amount)).toBeGreaterThan(0n);
    expect((await e2e.db.query(`SELECT count(*)::int AS n FROM "charge_payments"`)).rows[0].n).toBe(before.rows[0].n);
  });

  for (const mode of ["pull", "push"] as const) {
    it(`an unmodified mppx client pays (${mode === "pull" ? "transaction, fee-sponsored" : "hash"} mode) and gets a completion with a receipt`, async () => {
      const { mppx, account } = mppxClient(e2e.system.world, mode === "pull" ? 0 : 1, mode);
      const payerBefore = await tokenBalance(e2e.system.world, account.address);
      const payeeBefore = await tokenBalance(e2e.system.world, e2e.system.world.payee.address);
      const response = await mppx.fetch(`${e2e.system.gatewayUrl}/x402/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: body(`hello from ${mode}`),
      });
      const text = await response.text();
      expect(response.status, text).toBe(200);
      const completion = JSON.parse(text);
      expect(completion.object).toBe("chat.completion");
      expect(completion.choices[0].message.content.length).toBeGreaterThan(0);
      const receipt = Receipt.deserialize(response.headers.get("payment-receipt")!);
      expect(receipt).toMatchObject({ method: "tempo", status: "success" });
      // Where the time before the answer went, as W3C Server-Timing.
      expect(response.headers.get("server-timing")).toMatch(/^quote;dur=\d+\.\d{2};desc="[^"]+", verify;dur=\d+\.\d{2};desc="[^"]+"$/);
      const requestId = response.headers.get("x-request-id")!;
      const { rows } = await e2e.db.query(`SELECT * FROM "charge_payments" WHERE "requestId" = $1`, [requestId]);
      expect(rows).toHaveLength(1);
      expect(rows[0].txHash).toBe(receipt.reference.toLowerCase());
      expect(rows[0].payer).toBe(account.address.toLowerCase());
      const paid = BigInt(rows[0].amount);
      expect(await tokenBalance(e2e.system.world, e2e.system.world.payee.address)).toBe(payeeBefore + paid);
      // Sponsored (pull) mode: the payer pays exactly the amount, no gas. Push mode: the payer pays its own gas in the token.
      if (mode === "pull") expect(await tokenBalance(e2e.system.world, account.address)).toBe(payerBefore - paid);
      else expect(await tokenBalance(e2e.system.world, account.address)).toBeLessThan(payerBefore - paid + 1n);
    });
  }

  it("the OpenAI SDK with mppx's fetch gets a normal ChatCompletion and a streamed one", async () => {
    const { mppx } = mppxClient(e2e.system.world, 2);
    const openai = new OpenAI({
      baseURL: `${e2e.system.gatewayUrl}/v1`,
      apiKey: "unused: payment is the authentication",
      fetch: mppx.fetch as typeof fetch,
      maxRetries: 0,
    });
    const completion = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "SDK, plain" }] });
    expect(completion.object).toBe("chat.completion");
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(completion.choices[0]?.message.content?.length).toBeGreaterThan(0);

    const stream = await openai.chat.completions.create({
      model: "claude-sonnet-4-5",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "SDK, streamed" }],
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      text += chunk.choices[0]?.delta.content ?? "";
      finish ??= chunk.choices[0]?.finish_reason;
      usage ??= chunk.usage;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(finish).toBe("stop");
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it("settlement records estimated vs actual cost and a balanced ledger for a paid request", async () => {
    const { mppx } = mppxClient(e2e.system.world, 3);
    const response = await mppx.fetch(`${e2e.system.gatewayUrl}/x402/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body("ledger please"),
    });
    const completion = (await response.json()) as any;
    const requestId = response.headers.get("x-request-id")!;
    await expect
      .poll(async () => (await e2e.db.query(`SELECT status FROM inference_requests WHERE id = $1`, [requestId])).rows[0]?.status, {
        timeout: 15_000,
      })
      .toBe("succeeded");
    const row = (await e2e.db.query(`SELECT * FROM inference_requests WHERE id = $1`, [requestId])).rows[0];
    expect(row.promptTokens).toBe(completion.usage.prompt_tokens);
    expect(row.completionTokens).toBe(completion.usage.completion_tokens);
    // gpt-4o-mini: $0.15 in / $0.60 out per 1M → base units per token ×0.15 / ×0.6, rounded up once.
    const expectedActual = (BigInt(row.promptTokens) * 150_000n + BigInt(row.completionTokens) * 600_000n + 999_999n) / 1_000_000n;
    expect(BigInt(row.actualCost)).toBe(expectedActual);
    const payment = (await e2e.db.query(`SELECT * FROM charge_payments WHERE "requestId" = $1`, [requestId])).rows[0];
    expect(row.chargedCost).toBe(payment.amount);
    await expect
      .poll(
        async () =>
          (await e2e.db.query(`SELECT count(*)::int AS n FROM settlements WHERE "chargePaymentId" = $1 AND kind = 'charge'`, [payment.id]))
            .rows[0].n,
        { timeout: 15_000 },
      )
      .toBe(1);
    const { rows } = await e2e.db.query(
      `SELECT COALESCE(SUM(amount), 0)::text AS total FROM ledger_entries e JOIN ledger_transactions t ON t.id = e."transactionId" WHERE t.reference IN ($1, $2)`,
      [payment.id, requestId],
    );
    expect(rows[0].total).toBe("0");
    expect(payment.status).toMatch(/verified|consumed/);
  });

  it("200 distinct paid requests in parallel all succeed", async () => {
    const clients = e2e.system.world.wallets.map((_, i) => mppxClient(e2e.system.world, i).mppx);
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        clients[i % clients.length]!.fetch(`${e2e.system.gatewayUrl}/x402/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: body(`parallel request ${i}`),
        }),
      ),
    );
    const statuses = await Promise.all(responses.map(async (r) => (r.status === 200 ? 200 : `${r.status} ${await r.text()}`)));
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const hashes = responses.map((r) => Receipt.deserialize(r.headers.get("payment-receipt")!).reference);
    expect(new Set(hashes).size).toBe(200);
  }, 120_000);
});

describe("discovery", () => {
  it("serves an OpenAPI 3.1 document with x-payment-info on every paid route, valid per mppx", async () => {
    const doc = (await (await fetch(`${e2e.system.gatewayUrl}/openapi.json`)).json()) as any;
    expect(doc.openapi).toBe("3.1.0");
    expect(validate(doc)).toEqual([]);
    for (const path of ["/x402/v1/chat/completions", "/v1/chat/completions"]) {
      expect(doc.paths[path].post["x-payment-info"].offers[0]).toMatchObject({ method: "tempo", intent: "charge", amount: null });
      expect(doc.paths[path].post.responses["402"]).toBeDefined();
    }
    expect(doc["x-service-info"].docs.llms).toBe("/llms.txt");
  });

  it("serves llms.txt with endpoints, intents, models and prices", async () => {
    const response = await fetch(`${e2e.system.gatewayUrl}/llms.txt`);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toContain("/x402/v1/chat/completions");
    expect(text).toMatch(/gpt-4o-mini \(openai\): \$0\.15 in \/ \$0\.60 out per 1M tokens/);
    expect(text).toContain(e2e.system.world.token.address);
  });
});
