import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createTempoClients } from "@worldrouter/chain";
import { freePort, type RunningService, spawnService, stopService, waitUntilReady } from "@worldrouter/dev-runner";
import { Credential } from "mppx";
import { Mppx, tempo } from "mppx/client";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentBlock, reconcile, tokenBalance, useTestSystem } from "./harness.js";

/**
 * Paid once: whatever happens to the sponsored broadcast (its answer lost, a JSON-RPC error, the verifier killed
 * between broadcast and recording, a deploy), the client is never asked to pay again while its payment may still
 * land, the same credential sent again is served once the payment is known to be mined, and the payer is debited
 * once. The verifier talks to the chain through a JSON-RPC proxy that drops, errors or holds the broadcast's answer
 * (the transaction itself always reaches the chain).
 */
const e2e = useTestSystem({
  // Short chain timeouts and reclaim: the outcomes of these tests are known within seconds.
  CHAIN_RPC_TIMEOUT_MS: "3000",
  RPC_RECLAIM_IDLE_MS: "3000",
  RPC_TIMEOUT_MS: "30000",
});

type BroadcastFault = "drop" | "error" | "hold" | { delayMs: number };

/** A JSON-RPC proxy in front of the chain: the next `eth_sendRawTransactionSync` is forwarded, then its answer faulted. */
class ChainProxy {
  private server!: Server;
  private upstream!: string;
  private next: { fault: BroadcastFault; seen: () => void } | undefined;
  url!: string;

  async start(upstream: string) {
    this.upstream = upstream;
    this.server = createServer((req, res) => {
      let text = "";
      req.on("data", (chunk) => (text += chunk));
      req.on("end", async () => {
        const forwarded = await fetch(this.upstream, { method: "POST", headers: { "content-type": "application/json" }, body: text });
        const answer = await forwarded.text();
        const fault = this.next;
        if (!fault || !text.includes('"eth_sendRawTransactionSync"')) return res.end(answer);
        this.next = undefined;
        fault.seen();
        const { id } = JSON.parse(text) as { id: number };
        if (fault.fault === "error")
          return res.end(JSON.stringify({ jsonrpc: "2.0", id, error: { code: -32603, message: "internal error" } }));
        if (typeof fault.fault === "object") return setTimeout(() => res.end(answer), fault.fault.delayMs);
        // "drop" / "hold": the transaction is on the chain, its answer never comes.
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Faults the next broadcast's answer; resolves once that broadcast was mined (the node answered the proxy). */
  faultNextBroadcast(fault: BroadcastFault): Promise<void> {
    return new Promise((seen) => {
      this.next = { fault, seen };
    });
  }

  async stop() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const proxy = new ChainProxy();
let verifier: RunningService;
const verifierLogs: string[] = [];

/** A payment-verifier replica whose chain is the proxy (replaces the system's own). */
async function startVerifier(index: number) {
  const healthPort = await freePort();
  verifier = spawnService(
    "payment-verifier",
    { index, label: `payment-verifier@proxy#${index}`, url: `http://127.0.0.1:${healthPort}` },
    { ...e2e.system.env, CHAIN_RPC_URL: proxy.url, PAYMENT_VERIFIER_HEALTH_PORT: String(healthPort) },
    (label, line) => verifierLogs.push(`${label} | ${line}`),
  );
  await waitUntilReady(`http://127.0.0.1:${healthPort}/readyz`, verifier);
}

beforeAll(async () => {
  await proxy.start(e2e.system.world.rpcUrl);
  for (const replica of e2e.system.replicas["payment-verifier"]) await stopService(replica);
  await startVerifier(0);
}, 120_000);
afterAll(async () => {
  if (verifier) await stopService(verifier);
  await proxy.stop();
});

const url = () => `${e2e.system.gatewayUrl}/x402/v1/chat/completions`;
let nonce = 0;
const body = () => JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `paid once ${nonce++} ${Date.now()}` }] });
const post = (payload: string, authorization?: string) =>
  fetch(url(), {
    method: "POST",
    headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
    body: payload,
  });

/**
 * The unmodified mppx client paying from one of the world's wallets; `credentials` are the Authorization headers it
 * sent (to send the same credential again, as a client retrying after a 503 does).
 */
function payer(walletIndex: number) {
  const { world } = e2e.system;
  const account = privateKeyToAccount(world.wallets[walletIndex]!.privateKey);
  const clients = createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address });
  const credentials: string[] = [];
  const mppx = Mppx.create({
    polyfill: false,
    fetch: (input, init) => {
      const authorization = new Headers(init?.headers).get("authorization");
      if (authorization) credentials.push(authorization);
      return globalThis.fetch(input, init);
    },
    methods: [tempo.charge({ account, getClient: () => clients.publicClient as never, expectedChainId: world.chainId })],
  });
  return { mppx, account, credentials };
}

const pay = (mppx: ReturnType<typeof payer>["mppx"], payload: string) =>
  mppx.fetch(url(), { method: "POST", headers: { "content-type": "application/json" }, body: payload });

/** A retryable answer with no new challenge (mppx would pay a challenge at once). */
async function expectRetryLater(response: Response, types: string[]) {
  const text = await response.text();
  expect([503, 504], text).toContain(response.status);
  expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  expect(response.headers.get("www-authenticate")).toBeNull();
  expect(types).toContain(JSON.parse(text).type);
  if (response.status === 503) expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
}

/** Sends the same credential again until it is served (200), the way a client honouring Retry-After would. */
async function retryUntilServed(payload: string, credential: string): Promise<Response> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await post(payload, credential);
    if (response.status === 200 || Date.now() > deadline) return response;
    await expectRetryLater(response, [PENDING, IN_PROGRESS]);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

const PENDING = "https://worldrouter.dev/problems/payment-pending";
const IN_PROGRESS = "https://worldrouter.dev/problems/payment-in-progress";
const INTERRUPTED = "https://worldrouter.dev/problems/payment-verification-interrupted";

async function paymentFor(credential: string) {
  const { rows } = await e2e.db.query(`SELECT * FROM charge_payments WHERE "challengeId" = $1`, [
    Credential.deserialize(credential).challenge.id,
  ]);
  expect(rows).toHaveLength(1);
  return rows[0];
}

/** Settled: the served payment consumed, and the ledger equal to the chain. */
async function expectSettled(paymentId: string, fromBlock: bigint) {
  await expect
    .poll(async () => (await e2e.db.query(`SELECT status FROM charge_payments WHERE id = $1`, [paymentId])).rows[0].status, {
      timeout: 20_000,
    })
    .toBe("consumed");
  const reconciliation = await reconcile(e2e.system, e2e.db, fromBlock);
  expect(
    reconciliation.ok,
    JSON.stringify(reconciliation, (_, v) => (typeof v === "bigint" ? v.toString() : v)),
  ).toBe(true);
}

describe("a sponsored broadcast whose outcome is unknown never makes the client pay again", () => {
  for (const fault of ["drop", "error"] as const) {
    it(`the broadcast's answer ${fault === "drop" ? "never comes (timeout)" : "is a JSON-RPC error"}: 503 payment-pending, then the same credential is served once; debited once`, async () => {
      const fromBlock = await currentBlock(e2e.system.world);
      const { mppx, account, credentials } = payer(fault === "drop" ? 0 : 1);
      const before = await tokenBalance(e2e.system.world, account.address);
      const payload = body();
      const mined = proxy.faultNextBroadcast(fault);
      // The stock client pays the 402 and gets the 503: it does not pay again.
      await expectRetryLater(await pay(mppx, payload), [PENDING]);
      await mined;
      expect(credentials).toHaveLength(1);
      const credential = credentials[0]!;
      const payment = await paymentFor(credential);
      expect(payment).toMatchObject({ status: "pending" });

      const served = await retryUntilServed(payload, credential);
      const text = await served.text();
      expect(served.status, text).toBe(200);
      expect(served.headers.get("payment-receipt")).toBeTruthy();
      // Served once: the same credential a third time is a used challenge (a fresh one to pay for a new request).
      const again = await post(payload, credential);
      expect(again.status).toBe(402);
      await again.text();

      expect(await tokenBalance(e2e.system.world, account.address)).toBe(before - BigInt(payment.amount));
      expect(await paymentFor(credential)).toMatchObject({ id: payment.id, servedRequestId: served.headers.get("x-request-id") });
      await expectSettled(payment.id, fromBlock);
    });
  }

  it("the verifier is SIGKILLed between broadcast and recording the outcome: nothing lost, served once, debited once, ledger = chain", async () => {
    const fromBlock = await currentBlock(e2e.system.world);
    const { mppx, account } = payer(2);
    const before = await tokenBalance(e2e.system.world, account.address);
    const payload = body();
    const challenge = await post(payload);
    expect(challenge.status).toBe(402);
    const credential = await mppx.createCredential(challenge);
    const mined = proxy.faultNextBroadcast("hold");
    const first = post(payload, credential);
    await mined;
    // The transaction is on the chain, the verifier has not seen its receipt: kill it there.
    verifier.child.kill("SIGKILL");
    await verifier.exited;
    expect((await paymentFor(credential)).status).toBe("pending");
    await startVerifier(1);
    // The request the killed replica held is rerun by the new one, which finds the transaction mined and serves it
    // (200), or the gateway gives up first: retry later, no challenge, and the same credential is served on a retry.
    const firstAnswer = await first;
    let served = firstAnswer;
    if (firstAnswer.status !== 200) {
      await expectRetryLater(firstAnswer, [PENDING, INTERRUPTED, "https://worldrouter.dev/problems/payment-verification-timeout"]);
      served = await retryUntilServed(payload, credential);
    }
    const text = await served.text();
    expect(served.status, text).toBe(200);
    // Served once: the same credential again is a used challenge.
    const again = await post(payload, credential);
    expect(again.status).toBe(402);
    await again.text();
    const payment = await paymentFor(credential);
    expect(await tokenBalance(e2e.system.world, account.address)).toBe(before - BigInt(payment.amount));
    await expectSettled(payment.id, fromBlock);
  });
});

describe("the verifier drains on shutdown", () => {
  it("SIGTERM during a broadcast: the verification finishes and is answered (200, paid once), then the process exits 0", async () => {
    const { mppx, account } = payer(3);
    const before = await tokenBalance(e2e.system.world, account.address);
    const payload = body();
    const broadcast = proxy.faultNextBroadcast({ delayMs: 2000 });
    const response = pay(mppx, payload);
    await broadcast;
    const draining = verifier;
    draining.child.kill("SIGTERM");
    const served = await response;
    const text = await served.text();
    expect(served.status, text).toBe(200);
    expect(await draining.exited).toBe(0);
    const payment = (await e2e.db.query(`SELECT * FROM charge_payments WHERE "requestId" = $1`, [served.headers.get("x-request-id")]))
      .rows[0];
    expect(payment).toMatchObject({ status: expect.stringMatching(/verified|consumed/) });
    expect(await tokenBalance(e2e.system.world, account.address)).toBe(before - BigInt(payment.amount));
    await startVerifier(2);
  });
});
