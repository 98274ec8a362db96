/// <reference lib="dom" />
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTempoClients, tip20Abi } from "@worldrouter/chain";
import { chromium, type Browser, type Page } from "playwright-core";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mppxClient, tokenBalance, useTestSystem } from "./harness.js";

/**
 * The ops dashboard in real Chromium (Debian's `chromium`, driven by playwright-core) against the whole system: paid
 * requests appear in the charts and tables, a refund that gave up is retried from the page and paid on-chain, and
 * nothing shows without the token. Screenshots go to test/e2e/test-output/.
 */
const TOKEN = "e2e-ops-token-0123456789abcdef";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const OUTPUT = fileURLToPath(new URL("../test-output/", import.meta.url));
const e2e = useTestSystem({ OPS_TOKEN: TOKEN });
let browser: Browser;

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

const dashboardUrl = () => `${e2e.system.opsUrls[0]}/ops/dashboard`;

/** Pixels of a canvas that are not blank: a chart with a drawn series has many. */
const paintedPixels = (page: Page, selector: string) =>
  page.evaluate((sel) => {
    const canvas = document.querySelector(`${sel} canvas`) as HTMLCanvasElement | null;
    if (!canvas) return 0;
    const { data } = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height);
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) painted++;
    return painted;
  }, selector);

/**
 * A refund that gave up after every attempt, as the refund job leaves it: a real transfer to the payee recorded as a
 * verified charge (its received posting included), moved to `refunding`, its refund row `failed`.
 */
async function failedRefund(walletIndex: number, amount: bigint) {
  const { world } = e2e.system;
  const wallet = world.wallets[walletIndex]!;
  const clients = createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address });
  const hash = await clients.walletClientFor(privateKeyToAccount(wallet.privateKey)).writeContract({
    address: world.token.address,
    abi: tip20Abi,
    functionName: "transfer",
    args: [world.payee.address, amount],
    gas: 500_000n,
  });
  const receipt = await clients.publicClient.waitForTransactionReceipt({ hash, timeout: 60_000 });
  const payer = wallet.address.toLowerCase();
  const paymentId = randomUUID();
  const { db } = e2e;
  await db.query("BEGIN");
  await db.query(
    `INSERT INTO charge_payments (id, "challengeId", "txHash", "requestId", payer, recipient, token, "chainId", amount, "blockNumber", status, "updatedAt")
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'refunding', now())`,
    [
      paymentId,
      randomUUID(),
      hash,
      `req_${randomUUID()}`,
      payer,
      world.payee.address.toLowerCase(),
      world.token.address.toLowerCase(),
      world.chainId,
      String(amount),
      String(receipt.blockNumber),
    ],
  );
  const tx = randomUUID();
  await db.query(`INSERT INTO ledger_transactions (id, kind, reference, "idempotencyKey") VALUES ($1, 'charge.received', $2, $3)`, [
    tx,
    paymentId,
    `charge.received:${paymentId}`,
  ]);
  await db.query(`INSERT INTO ledger_entries ("transactionId", account, amount) VALUES ($1, $2, $3), ($1, $4, $5)`, [
    tx,
    `asset:payee_wallet:${world.token.address.toLowerCase()}`,
    String(amount),
    `liability:payer_prepaid:${payer}`,
    String(-amount),
  ]);
  await db.query(
    `INSERT INTO settlements (id, kind, "chainId", amount, status, "chargePaymentId", error) VALUES (gen_random_uuid(), 'refund', $1, $2, 'failed', $3, 'RpcRequestError: gave up after 18 attempts')`,
    [world.chainId, String(amount), paymentId],
  );
  await db.query("COMMIT");
  return { paymentId, payer: wallet.address };
}

describe("ops dashboard in Chromium", () => {
  it("asks for the token and shows no ledger data without it", async () => {
    const page = await browser.newPage();
    await page.goto(dashboardUrl());
    await page.locator("#login").waitFor({ state: "visible" });
    expect(await page.locator("#overview").isVisible()).toBe(false);
    await page.fill("#token", "not-the-token");
    await page.click("#login-form button");
    await expect.poll(() => page.textContent("#login-error")).toContain("not valid");
    const denied = await page.evaluate(async () => (await fetch("/ops/api/summary")).status);
    expect(denied).toBe(401);
    await page.screenshot({ path: join(OUTPUT, "ops-dashboard-login.png") });
    await page.close();
  });

  it("shows paid requests in the charts and tables, and retries a failed refund end to end", async () => {
    const { system } = e2e;
    for (let i = 0; i < 3; i++) {
      const { mppx } = mppxClient(system.world, i);
      const response = await mppx.fetch(`${system.gatewayUrl}/x402/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", max_tokens: 32, messages: [{ role: "user", content: `hello ${i}` }] }),
      });
      expect(response.status).toBe(200);
    }
    // Booked by settlement (money events are asynchronous).
    await expect
      .poll(async () => (await e2e.db.query(`SELECT count(*)::int AS n FROM inference_requests WHERE status = 'succeeded'`)).rows[0].n, {
        timeout: 30_000,
      })
      .toBe(3);
    const amount = 400_000n;
    const refund = await failedRefund(4, amount);

    const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    await page.goto(`${dashboardUrl()}#token=${TOKEN}`);
    await page.locator("#overview").waitFor({ state: "visible" });
    expect(page.url()).not.toContain(TOKEN); // the token leaves the address bar
    await expect.poll(() => page.textContent('#kpis [data-kpi="Requests"] b')).toBe("3");
    await expect.poll(() => page.getAttribute("#chart-revenue", "data-points")).not.toBe("0");
    expect(await paintedPixels(page, "#chart-revenue")).toBeGreaterThan(100);
    expect(await paintedPixels(page, "#chart-requests")).toBeGreaterThan(100);
    expect(await page.textContent("#models")).toContain("gpt-4o-mini");
    expect(await page.locator("#payers a").count()).toBe(3);
    await page.screenshot({ path: join(OUTPUT, "ops-dashboard-overview.png"), fullPage: true });

    const before = await tokenBalance(system.world, refund.payer);
    const retry = page.locator(`button[data-retry="${refund.paymentId}"]`);
    await retry.click();
    // The refund job runs again, pays on-chain and confirms: the row leaves the stuck list.
    await expect
      .poll(
        async () =>
          (await e2e.db.query(`SELECT status::text FROM settlements WHERE kind = 'refund' AND "chargePaymentId" = $1`, [refund.paymentId]))
            .rows[0].status,
        { timeout: 60_000, interval: 500 },
      )
      .toBe("confirmed");
    expect(await tokenBalance(system.world, refund.payer)).toBe(before + amount);
    const payment = await e2e.db.query(`SELECT status::text FROM charge_payments WHERE id = $1`, [refund.paymentId]);
    expect(payment.rows[0].status).toBe("refunded");
    const audit = await e2e.db.query(`SELECT action, outcome FROM ops_actions WHERE target = $1`, [refund.paymentId]);
    expect(audit.rows).toEqual([{ action: "refund.retry", outcome: "queued" }]);
    await expect.poll(() => page.locator(`button[data-retry="${refund.paymentId}"]`).count(), { timeout: 15_000 }).toBe(0);
    await page.screenshot({ path: join(OUTPUT, "ops-dashboard-after-retry.png"), fullPage: true });

    // A payer's own page.
    await page.locator("#payers a").first().click();
    await page.locator("#payer-page").waitFor({ state: "visible" });
    await expect.poll(() => page.textContent('#payer-kpis [data-kpi="Requests"] b')).toBe("1");
    expect(await page.locator("#payer-payments tr").count()).toBe(2);
    await page.screenshot({ path: join(OUTPUT, "ops-dashboard-payer.png"), fullPage: true });
    await page.close();
  });
});
