import { freePort, spawnService, stopService, type RunningService } from "@worldrouter/dev-runner";
import { inferenceAdmissionKey } from "@worldrouter/contracts";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { currentBlock, mppxClient, reconcile, tokenBalance, useTestSystem } from "./harness.js";

/**
 * Drain, don't drop (real processes, stock mppx client): a worker SIGTERMed mid-stream finishes the stream and bills
 * it; a job that is never started (its deadline passed in the queue, its client left before it started, its payment
 * swept as orphaned) is never run and its payment is refunded exactly once.
 *
 * One worker. The reply deadline is 5 s; the orphan window 1 minute (RPC_TIMEOUT_MS + the deadline stay below it).
 * Every stream is 120 tokens, 40 ms apart (≈ 5 s): long enough to SIGTERM its worker in the middle.
 */
const REPLY_TIMEOUT_MS = 5_000;
const TOKENS = 120;
const e2e = useTestSystem(
  { INFERENCE_REPLY_TIMEOUT_MS: String(REPLY_TIMEOUT_MS), RPC_TIMEOUT_MS: "20000", ORPHANED_PAYMENT_MINUTES: "1" },
  { latencyMs: 40, completionTokens: TOKENS },
);
let redis: Redis | undefined;
const spawned: RunningService[] = [];
afterAll(async () => {
  for (const worker of spawned) await stopService(worker);
  redis?.disconnect();
});

const url = () => `${e2e.system.gatewayUrl}/x402/v1/chat/completions`;
const body = (content: string, stream = false) => JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], stream });
const post = (content: string, stream = false, signal?: AbortSignal) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: body(content, stream),
  ...(signal ? { signal } : {}),
});

/** The admission verdict a request's job got (`InferenceAdmissions`), read straight from Redis. */
async function verdictOf(requestId: string): Promise<string | null> {
  redis ??= new Redis(e2e.system.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  return redis.get(inferenceAdmissionKey(e2e.system.env.REDIS_NAMESPACE!, requestId));
}

interface PaymentRow {
  id: string;
  requestId: string;
  amount: string;
  status: string;
  refunds: number;
  confirmedRefunds: number;
  usagePostings: number;
  inference: { status: string; completionTokens: number; errorClass: string | null } | null;
}

async function paymentOf(where: { requestId: string } | { payer: string; since: Date }): Promise<PaymentRow | undefined> {
  const [condition, params] =
    "requestId" in where
      ? [`c."requestId" = $1`, [where.requestId]]
      : [`lower(c.payer) = lower($1) AND c."createdAt" >= $2`, [where.payer, where.since]];
  const { rows } = await e2e.db.query<PaymentRow>(
    `SELECT c.id, c."requestId", c.amount::text, c.status::text,
       (SELECT count(*)::int FROM settlements s WHERE s."chargePaymentId" = c.id AND s.kind = 'refund') AS refunds,
       (SELECT count(*)::int FROM settlements s WHERE s."chargePaymentId" = c.id AND s.kind = 'refund' AND s.status = 'confirmed') AS "confirmedRefunds",
       (SELECT count(*)::int FROM ledger_transactions t WHERE t.kind = 'charge.usage' AND t.reference = c."requestId") AS "usagePostings",
       (SELECT json_build_object('status', r.status, 'completionTokens', r."completionTokens", 'errorClass', r."errorClass")
          FROM inference_requests r WHERE r.id = COALESCE(c."servedRequestId", c."requestId")) AS inference
     FROM charge_payments c WHERE ${condition} ORDER BY c."createdAt" DESC LIMIT 1`,
    params,
  );
  return rows[0];
}

/** Refunded in full, once: one confirmed refund transaction, nothing billed, nothing served. */
async function expectRefundedOnce(requestId: string, errorClass: string, payer: `0x${string}`, balanceBefore: bigint) {
  await expect.poll(async () => (await paymentOf({ requestId }))?.status, { timeout: 60_000, interval: 500 }).toBe("refunded");
  // The dropped job's usage arrives (its worker read it): nothing served, nothing billed.
  await expect
    .poll(async () => (await paymentOf({ requestId }))?.inference, { timeout: 60_000, interval: 500 })
    .toEqual({ status: "cancelled", completionTokens: 0, errorClass });
  const payment = await paymentOf({ requestId });
  expect(payment).toMatchObject({ refunds: 1, confirmedRefunds: 1, usagePostings: 0 });
  expect(await tokenBalance(e2e.system.world, payer)).toBe(balanceBefore);
}

describe("drain, don't drop", () => {
  it("a client that leaves before its job starts, and a job whose deadline passes in the queue, are never run and are refunded once", async () => {
    const fromBlock = await currentBlock(e2e.system.world);
    const [worker] = e2e.system.replicas["inference-worker"];
    const gone = mppxClient(e2e.system.world, 0);
    const late = mppxClient(e2e.system.world, 1);
    const goneBefore = await tokenBalance(e2e.system.world, gone.account.address);
    const lateBefore = await tokenBalance(e2e.system.world, late.account.address);
    // The worker is frozen: jobs wait in the queue.
    worker!.child.kill("SIGSTOP");
    try {
      // 1. The client pays, then disconnects while its job waits.
      const since = new Date();
      const abort = new AbortController();
      // Paid with the stock client's credential, sent by plain fetch: aborting inside mppx.fetch can leave an
      // AbortError in a promise of mppx's own that nobody awaits (an unhandled rejection that fails the run).
      const challenge = await fetch(url(), post("I will not wait", true));
      expect(challenge.status).toBe(402);
      const credential = await gone.mppx.createCredential(challenge);
      const paid = post("I will not wait", true, abort.signal);
      const leaving = fetch(url(), { ...paid, headers: { ...paid.headers, authorization: credential } }).catch((err: Error) => err);
      await expect
        .poll(async () => (await paymentOf({ payer: gone.account.address, since }))?.status, { timeout: 30_000, interval: 100 })
        .toBe("verified");
      await new Promise((r) => setTimeout(r, 500)); // the verifier answered; the gateway dispatched the job
      abort.abort();
      expect(await leaving).toBeInstanceOf(Error);
      const goneId = (await paymentOf({ payer: gone.account.address, since }))!.requestId;
      await expect.poll(() => verdictOf(goneId), { timeout: 10_000 }).toBe("client-gone");

      // 2. Nobody starts the job by its deadline: 504 saying what happens to the money.
      const started = Date.now();
      const response = await late.mppx.fetch(url(), post("nobody is there"));
      const problem = (await response.json()) as { detail: string };
      expect(response.status, JSON.stringify(problem)).toBe(504);
      expect(Date.now() - started).toBeGreaterThanOrEqual(REPLY_TIMEOUT_MS);
      expect(response.headers.get("content-type")).toContain("application/problem+json");
      const lateId = response.headers.get("x-request-id")!;
      const latePayment = (await paymentOf({ requestId: lateId }))!;
      expect(problem).toMatchObject({
        type: "https://worldrouter.dev/problems/inference-reply-timeout",
        title: "Inference Reply Timeout",
        status: 504,
        refund: { amount: latePayment.amount, to: late.account.address.toLowerCase() },
      });
      expect(problem.detail).toContain("never run");
      expect(problem.detail).toContain("refunded in full on-chain");
      expect(await verdictOf(lateId)).toBe("expired");
    } finally {
      worker!.child.kill("SIGCONT");
    }
    // The worker wakes, reads both jobs and drops them: each payment refunded once, nothing served or billed.
    const goneId = (
      await e2e.db.query(`SELECT "requestId" FROM charge_payments WHERE lower(payer) = lower($1) ORDER BY "createdAt" DESC LIMIT 1`, [
        gone.account.address,
      ])
    ).rows[0].requestId;
    const lateId = (
      await e2e.db.query(`SELECT "requestId" FROM charge_payments WHERE lower(payer) = lower($1) ORDER BY "createdAt" DESC LIMIT 1`, [
        late.account.address,
      ])
    ).rows[0].requestId;
    await expectRefundedOnce(goneId, "InferenceClientGone", gone.account.address, goneBefore);
    await expectRefundedOnce(lateId, "InferenceDeadlinePassed", late.account.address, lateBefore);
    expect(await reconcile(e2e.system, e2e.db, fromBlock)).toMatchObject({ ok: true, missingInLedger: [], missingOnChain: [] });
  }, 180_000);

  it("a worker SIGTERMed mid-stream finishes the stream (every token, [DONE]) and bills it; no refund", async () => {
    const [worker] = e2e.system.replicas["inference-worker"];
    const { mppx, account } = mppxClient(e2e.system.world, 2);
    const response = await mppx.fetch(url(), post("a long story please", true));
    expect(response.status).toBe(200);
    const requestId = response.headers.get("x-request-id")!;
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    let terminated = false;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += value;
      if (!terminated && text.includes('"content"')) {
        worker!.child.kill("SIGTERM");
        terminated = true;
      }
    }
    expect(terminated).toBe(true);
    const events = text.split("\n\n").filter((e) => e.startsWith("data: "));
    expect(events.at(-1)).toBe("data: [DONE]");
    expect(text).not.toContain('"error"');
    const deltas = events
      .slice(0, -1)
      .map((e) => JSON.parse(e.slice(6)))
      .filter((c) => c.choices?.[0]?.delta?.content);
    expect(deltas).toHaveLength(TOKENS);
    // The worker exits by itself once drained (well before WORKER_DRAIN_MS), cleanly.
    expect(await worker!.exited).toBe(0);

    await expect.poll(async () => (await paymentOf({ requestId }))?.status, { timeout: 30_000, interval: 250 }).toBe("consumed");
    const payment = await paymentOf({ requestId });
    expect(payment).toMatchObject({
      refunds: 0,
      usagePostings: 1,
      inference: { status: "succeeded", completionTokens: TOKENS, errorClass: null },
    });
    expect(await verdictOf(requestId)).toBe("admitted");
    expect(account.address).toBeTruthy();
  }, 120_000);

  it("a payment swept as orphaned is never served afterwards: a worker that reads its job later drops it; refunded once", async () => {
    // No worker now (the previous test's one exited): the job waits in the queue past its deadline and the sweep window.
    const fromBlock = await currentBlock(e2e.system.world);
    const { mppx, account } = mppxClient(e2e.system.world, 3);
    const before = await tokenBalance(e2e.system.world, account.address);
    const response = await mppx.fetch(url(), post("swept before anyone served it"));
    expect(response.status).toBe(504);
    const requestId = response.headers.get("x-request-id")!;
    // Settlement's orphan sweep refunds it (window 1 minute, a tick a minute).
    await expect.poll(async () => (await paymentOf({ requestId }))?.status, { timeout: 200_000, interval: 1_000 }).toBe("refunded");
    expect(await tokenBalance(e2e.system.world, account.address)).toBe(before);

    // A worker comes up and reads the job: it must not run it. (The gateway's `expired` verdict lived for the sweep
    // window only; the sweep recorded `swept` before refunding, which is what the worker finds.)
    const port = await freePort();
    const worker = spawnService(
      "inference-worker",
      { index: 9, label: "inference-worker#late", url: `http://127.0.0.1:${port}` },
      { ...e2e.system.env, INFERENCE_WORKER_HEALTH_PORT: String(port) },
      (label, line) => e2e.system.logs.push(`${label} | ${line}`),
    );
    spawned.push(worker);
    await expectRefundedOnce(requestId, "InferencePaymentSwept", account.address, before);
    expect(await reconcile(e2e.system, e2e.db, fromBlock)).toMatchObject({ ok: true, missingInLedger: [], missingOnChain: [] });
  }, 300_000);

  it("a gateway SIGTERMed mid-stream refuses new requests, relays the stream to its end, bills it, then exits 0", async () => {
    // The worker started by the previous test serves it.
    const [gateway] = e2e.system.replicas.gateway;
    const { mppx } = mppxClient(e2e.system.world, 4);
    const response = await mppx.fetch(url(), post("a story while the gateway stops", true));
    expect(response.status).toBe(200);
    const requestId = response.headers.get("x-request-id")!;
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    let refused: string | undefined;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += value;
      if (refused === undefined && text.includes('"content"')) {
        gateway!.child.kill("SIGTERM");
        await new Promise((r) => setTimeout(r, 300));
        // A new request while it drains: 503, or no connection at all (the port is closed).
        refused = await fetch(url(), post("too late")).then(
          (r) => String(r.status),
          () => "no connection",
        );
      }
    }
    expect(["503", "no connection"]).toContain(refused);
    const events = text.split("\n\n").filter((e) => e.startsWith("data: "));
    expect(events.at(-1)).toBe("data: [DONE]");
    expect(
      events
        .slice(0, -1)
        .map((e) => JSON.parse(e.slice(6)))
        .filter((c) => c.choices?.[0]?.delta?.content),
    ).toHaveLength(TOKENS);
    expect(await gateway!.exited).toBe(0);
    await expect.poll(async () => (await paymentOf({ requestId }))?.status, { timeout: 30_000, interval: 250 }).toBe("consumed");
    expect(await paymentOf({ requestId })).toMatchObject({
      refunds: 0,
      usagePostings: 1,
      inference: { status: "succeeded", completionTokens: TOKENS },
    });
  }, 120_000);
});
