import { describe, expect, it } from "vitest";
import { mppxClient, tokenBalance, useTestSystem } from "./harness.js";

// The fake upstream answers as long as it is allowed to: only the limit the provider is called with stops it, as a
// real model that never stops on its own would be stopped.
const e2e = useTestSystem({}, { completionTokens: 20_000, chunkTokens: 64 });

interface ModelPrices {
  input: bigint;
  output: bigint;
  cachedInput: bigint;
}

/** Base units per 1M tokens, as our own /v1/models publishes them. */
async function publishedPrices(model: string): Promise<ModelPrices> {
  const list = (await (await fetch(`${e2e.system.gatewayUrl}/v1/models`)).json()) as {
    data: { id: string; pricing: { base_units_per_million_tokens: { input: string; output: string; cached_input: string | null } } }[];
  };
  const prices = list.data.find((m) => m.id === model)!.pricing.base_units_per_million_tokens;
  return { input: BigInt(prices.input), output: BigInt(prices.output), cachedInput: BigInt(prices.cached_input ?? prices.input) };
}

interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number };
}

/** What the usage served is worth at the published prices, rounded up once. */
function worthOf(usage: OpenAiUsage, prices: ModelPrices): bigint {
  const cached = BigInt(usage.prompt_tokens_details?.cached_tokens ?? 0);
  const uncached = BigInt(usage.prompt_tokens) - cached;
  const total = uncached * prices.input + cached * prices.cachedInput + BigInt(usage.completion_tokens) * prices.output;
  return (total + 999_999n) / 1_000_000n;
}

// The repro cases of issue 10 item 1, paid with the stock mppx client (wallets 0–2: one each, so balances are exact).
const cases = [
  { name: "gpt-4o, n = 64, prompt 'hi'", wallet: 0, body: { model: "gpt-4o", n: 64 }, choices: 64, limit: 4096 },
  { name: "claude-opus-4-1 without max_tokens", wallet: 1, body: { model: "claude-opus-4-1" }, choices: 1, limit: 4096 },
  {
    name: "gpt-5 with max_completion_tokens 8000",
    wallet: 2,
    body: { model: "gpt-5", max_completion_tokens: 8000 },
    choices: 1,
    limit: 8000,
  },
];

describe("the charge price covers what is served", () => {
  for (const c of cases) {
    it(`${c.name}: the payment covers the usage served, which the limit bounds`, async () => {
      const { mppx, account } = mppxClient(e2e.system.world, c.wallet);
      const before = await tokenBalance(e2e.system.world, account.address);
      const response = await mppx.fetch(`${e2e.system.gatewayUrl}/x402/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], ...c.body }),
      });
      const text = await response.text();
      expect(response.status, text).toBe(200);
      const completion = JSON.parse(text) as { usage: OpenAiUsage; choices: { finish_reason: string }[] };
      const paid = before - (await tokenBalance(e2e.system.world, account.address));

      // The provider was called with the priced limit and stopped there.
      expect(completion.choices).toHaveLength(c.choices);
      expect(completion.choices.every((choice) => choice.finish_reason === "length")).toBe(true);
      expect(completion.usage.completion_tokens).toBe(c.choices * c.limit);

      const served = worthOf(completion.usage, await publishedPrices(c.body.model));
      expect(paid).toBeGreaterThanOrEqual(served);

      // The ledger keeps the three figures: seed estimate < charged (= paid) and actual ≤ charged.
      const requestId = response.headers.get("x-request-id")!;
      await expect
        .poll(async () => (await e2e.db.query(`SELECT status FROM inference_requests WHERE id = $1`, [requestId])).rows[0]?.status, {
          timeout: 20_000,
        })
        .toBe("succeeded");
      const row = (await e2e.db.query(`SELECT * FROM inference_requests WHERE id = $1`, [requestId])).rows[0];
      expect(BigInt(row.chargedCost)).toBe(paid);
      expect(BigInt(row.estimatedCost)).toBeLessThan(paid);
      expect(BigInt(row.actualCost)).toBe(served);
    });
  }

  it("a lower max_tokens pays less", async () => {
    const priceOf = async (extra: Record<string, unknown>) => {
      const response = await fetch(`${e2e.system.gatewayUrl}/x402/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], ...extra }),
      });
      expect(response.status).toBe(402);
      return BigInt(((await response.json()) as { price: { amount: string } }).price.amount);
    };
    expect(await priceOf({ max_tokens: 16 })).toBeLessThan(await priceOf({}));
  });
});
