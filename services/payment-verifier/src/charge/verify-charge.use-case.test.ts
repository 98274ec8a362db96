import "reflect-metadata";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { INestApplicationContext } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { tempoChain, tip20Abi } from "@worldrouter/chain";
import { loadConfig } from "@worldrouter/config";
import { createPrismaClient, type PrismaClient } from "@worldrouter/db";
import { bodyDigest, createChargeChallenge } from "@worldrouter/mpp";
import { newRequestId } from "@worldrouter/observability";
import { METRICS, MoneyEventPublisher, redisOptions } from "@worldrouter/runtime";
import { MONEY_EVENT_FIELD, moneyEventStreamKey } from "@worldrouter/contracts";
import { Redis } from "ioredis";
import type { Registry } from "prom-client";
import { Credential } from "mppx";
import {
  concat,
  createClient,
  custom,
  decodeFunctionData,
  encodeAbiParameters,
  encodeEventTopics,
  encodeFunctionData,
  keccak256,
  maxUint256,
  numberToHex,
  stringToHex,
  toHex,
  type Hex,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { signTransaction } from "viem/actions";
import { Transaction } from "viem/tempo";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PaymentVerifierModule } from "../payment-verifier.module.js";
import { ResolveChargeOutcomesUseCase } from "./resolve-charge-outcomes.use-case.js";
import { VerifyChargeUseCase } from "./verify-charge.use-case.js";

/**
 * The use case against real Redis and Postgres and a scripted JSON-RPC node (real HTTP), to reach what a local
 * chain will not do on demand: a node that refuses the broadcast, or one whose sync send times out. The happy
 * paths against a real chain are in test/e2e.
 */
const TOKEN: Hex = "0x20c000000000000000000000e9343992dac325b3";
const PAYEE: Hex = "0x00000000000000000000000000000000000000aa";
const REALM = "verifier.test";
/** How the node answers a sync broadcast: its receipt (after `broadcastDelayMs`), a JSON-RPC error, or a timeout. */
type SyncSend = "receipt" | "refuse" | "timeout";
let syncSend: SyncSend = "receipt";
let broadcastDelayMs = 0;
const calls: string[] = [];
/** Receipts `eth_getTransactionReceipt` answers: every receipt the node gave, and what a test "mines" later. */
const mined = new Map<Hex, object>();

/** A receipt as the node would write it for `raw`: hash, sender and the TransferWithMemo its one call makes. */
function receiptFor(raw: Hex) {
  const tx = Transaction.deserialize(raw) as { from: Hex; calls: { to: Hex; data: Hex }[] };
  const { args } = decodeFunctionData({ abi: tip20Abi, data: tx.calls[0]!.data });
  const [to, amount, memo] = args as [Hex, bigint, Hex];
  return {
    transactionHash: keccak256(raw),
    status: "0x1",
    from: tx.from.toLowerCase(),
    blockNumber: "0x2a",
    logs: [
      {
        address: TOKEN,
        topics: encodeEventTopics({ abi: tip20Abi, eventName: "TransferWithMemo", args: { from: tx.from, to, memo } }),
        data: encodeAbiParameters([{ type: "uint256" }], [amount]),
      },
    ],
  };
}

let node: Server;
let app: INestApplicationContext;
let db: PrismaClient;
let verifier: VerifyChargeUseCase;
let config: ReturnType<typeof loadConfig>;

beforeAll(async () => {
  node = createServer((req, res) => {
    let text = "";
    req.on("data", (chunk) => (text += chunk));
    req.on("end", () => {
      const { id, method, params } = JSON.parse(text) as { id: number; method: string; params: [Hex] };
      calls.push(method);
      const reply = (body: object) => res.end(JSON.stringify({ jsonrpc: "2.0", id, ...body }));
      if (method === "eth_call") return reply({ result: "0x" });
      if (method === "eth_getTransactionReceipt") return reply({ result: mined.get(params[0]) ?? null });
      if (method !== "eth_sendRawTransactionSync") return reply({ error: { code: -32601, message: "method not found" } });
      if (syncSend === "refuse") return reply({ error: { code: -32003, message: "insufficient funds for gas * price + value" } });
      if (syncSend === "timeout")
        return reply({
          error: { code: 4, message: "The transaction was added to the mempool but wasn't processed in 2s.", data: keccak256(params[0]) },
        });
      const receipt = receiptFor(params[0]);
      mined.set(receipt.transactionHash, receipt);
      setTimeout(() => reply({ result: receipt }), broadcastDelayMs);
    });
  });
  await new Promise<void>((resolve) => node.listen(0, "127.0.0.1", resolve));
  config = loadConfig({
    ...process.env,
    WORLD_FILE: "/nonexistent",
    LOG_LEVEL: "silent",
    PUBLIC_URL: `https://${REALM}`,
    MIN_CHARGE: "20",
    PAYEE_ADDRESS: PAYEE,
    TOKEN_ADDRESS: TOKEN,
    CHAIN_ID: "4217",
    CHAIN_RPC_URL: `http://127.0.0.1:${(node.address() as AddressInfo).port}`,
    FEE_PAYER_PRIVATE_KEY: generatePrivateKey(),
  });
  app = await NestFactory.createApplicationContext(PaymentVerifierModule.forRoot(config), { logger: false });
  verifier = app.get(VerifyChargeUseCase);
  db = createPrismaClient(config.databaseUrl);
});
afterAll(async () => {
  await app?.close();
  await db?.$disconnect();
  await new Promise<void>((resolve) => node?.close(() => resolve()));
});

const client = createClient({
  chain: tempoChain({ rpcUrl: "http://127.0.0.1:1", chainId: 4217, feeToken: TOKEN }),
  transport: custom({
    request: async ({ method }) => (method === "eth_chainId" ? numberToHex(4217) : Promise.reject(new Error(`unexpected ${method}`))),
  }),
});

/** A verification request carrying what mppx's client sends in pull mode: a 0x78 envelope paying the challenge. */
async function pullRequest(amount = 25n, options: { validAfter?: number; payerKey?: Hex } = {}) {
  const body = JSON.stringify({ model: "gpt-4o-mini", nonce: Math.random() });
  const challenge = createChargeChallenge({
    secretKey: config.mpp.secretKey,
    realm: REALM,
    terms: { amount, currency: TOKEN, recipient: PAYEE, chainId: 4217, feePayer: true },
    digest: bodyDigest(body),
    expiresAt: new Date(Date.now() + 120_000),
  });
  const fingerprint = (value: string, bytes: number) => keccak256(stringToHex(value)).slice(0, 2 + bytes * 2) as Hex;
  const memo = concat(["0xef1ed712", "0x01", fingerprint(REALM, 10), toHex(0, { size: 10 }), fingerprint(challenge.id, 7)]);
  const payer = privateKeyToAccount(options.payerKey ?? generatePrivateKey());
  const signature = await signTransaction(client, {
    account: payer,
    chainId: 4217,
    calls: [{ to: TOKEN, data: encodeFunctionData({ abi: tip20Abi, functionName: "transferWithMemo", args: [PAYEE, amount, memo] }) }],
    gas: 600_000n,
    maxFeePerGas: 24_000_000_000n,
    maxPriorityFeePerGas: 0n,
    nonceKey: maxUint256,
    nonce: 0,
    validBefore: Math.floor(Date.now() / 1000) + 25,
    ...(options.validAfter === undefined ? {} : { validAfter: options.validAfter }),
    feePayer: true,
  } as never);
  const authorization = Credential.serialize(Credential.from({ challenge, payload: { type: "transaction", signature } } as never));
  return {
    payer: payer.address.toLowerCase(),
    request: { requestId: newRequestId(), authorization, bodyDigest: bodyDigest(body), amount: amount.toString(), model: "gpt-4o-mini" },
  };
}

/** An unlabelled counter of the verifier's metrics registry (what alerts read). */
const counterValue = async (name: string) => (await app.get<Registry>(METRICS).getSingleMetric(name)!.get()).values[0]?.value ?? 0;

const paymentsFor = (requestId: string) => db.chargePayment.count({ where: { requestId } });
const statusOf = async (requestId: string) => (await db.chargePayment.findFirst({ where: { requestId } }))?.status;
const pullRequestFrom = async (payerKey: Hex) => (await pullRequest(25n, { payerKey })).request;
const resolveOutcomes = (now?: number) => app.get(ResolveChargeOutcomesUseCase).resolveDue(now);

describe("VerifyChargeUseCase, pull mode (real Redis + Postgres, scripted node)", () => {
  it("simulates once, broadcasts once and records the payment from that receipt: sender, block, hash", async () => {
    syncSend = "receipt";
    const { payer, request } = await pullRequest();
    calls.length = 0;
    const result = await verifier.verify(request);
    expect(result).toMatchObject({ ok: true, payer, amount: "25" });
    expect(calls).toEqual(["eth_call", "eth_sendRawTransactionSync"]);
    const payment = await db.chargePayment.findUniqueOrThrow({ where: { txHash: (result as { txHash: string }).txHash } });
    expect(payment).toMatchObject({ payer, requestId: request.requestId, blockNumber: 42n, token: TOKEN, recipient: PAYEE });
    expect(payment).toMatchObject({ status: "verified", servedRequestId: request.requestId });
    // The same credential for another request: the payment is verified and served already.
    expect(await verifier.verify({ ...request, requestId: newRequestId() })).toMatchObject({
      ok: false,
      problem: { type: "https://paymentauth.org/problems/invalid-challenge", detail: expect.stringMatching(/already been paid and used/) },
    });
    // The same request delivered again (the RPC transport reruns a request whose replica died): the recorded answer,
    // with no chain call and no second payment.
    calls.length = 0;
    const again = await verifier.verify(request);
    expect(again).toMatchObject({ ok: true, paymentId: (result as { paymentId: string }).paymentId, payer, amount: "25" });
    expect(calls).toEqual([]);
    expect(await paymentsFor(request.requestId)).toBe(1);
  });

  it("publishes charge.verified while the row is still `pending`: a verifier dying in between leaves it to charge-outcomes, never a verified payment without its event", async () => {
    syncSend = "receipt";
    const { request } = await pullRequest();
    const publisher = app.get(MoneyEventPublisher);
    // Observes the row at the moment the event leaves (the real publish runs).
    const statusAtPublish: (string | undefined)[] = [];
    const spy = vi.spyOn(publisher, "publish").mockImplementation(async (event) => {
      if (event.kind === "charge.verified" && event.requestId === request.requestId)
        statusAtPublish.push(await statusOf(request.requestId));
      return MoneyEventPublisher.prototype.publish.call(publisher, event);
    });
    try {
      expect(await verifier.verify(request)).toMatchObject({ ok: true });
    } finally {
      spy.mockRestore();
    }
    expect(statusAtPublish).toEqual(["pending"]);
    expect(await statusOf(request.requestId)).toBe("verified");
  });

  it("a JSON-RPC error on the broadcast is not a refusal: 503 payment-pending (no new challenge) until no receipt can come, then failed", async () => {
    const { request } = await pullRequest();
    syncSend = "refuse";
    const answer = await verifier.verify(request);
    expect(answer).toMatchObject({
      ok: false,
      problem: { type: "https://worldrouter.dev/problems/payment-pending", status: 503, retryAfter: expect.any(Number) },
    });
    // Recorded before the broadcast, with its hash: nothing the chain might still do is lost.
    expect(await statusOf(request.requestId)).toBe("pending");
    syncSend = "receipt";
    // No receipt while the transaction may still be mined: still pending; once its validBefore is long past: failed.
    await resolveOutcomes();
    expect(await statusOf(request.requestId)).toBe("pending");
    await resolveOutcomes(Date.now() + 120_000);
    expect(await statusOf(request.requestId)).toBe("failed");
    // The credential's transaction can never be mined now: a payment problem, so the client pays a new challenge.
    expect(await verifier.verify({ ...request, requestId: newRequestId() })).toMatchObject({
      ok: false,
      problem: { type: "https://paymentauth.org/problems/verification-failed", detail: expect.stringMatching(/nothing was paid/) },
    });
  });

  it("a broadcast whose outcome is unknown (sync send timed out) is looked up later and served once, to a retry of the same credential", async () => {
    const { request } = await pullRequest();
    syncSend = "timeout";
    const before = await counterValue("wr_charge_broadcast_unknown_total");
    const pending = { ok: false, problem: { type: "https://worldrouter.dev/problems/payment-pending", status: 503 } };
    expect(await verifier.verify(request)).toMatchObject(pending);
    expect(await counterValue("wr_charge_broadcast_unknown_total")).toBe(before + 1);
    syncSend = "receipt";
    // The client sends the same credential again (a new request) while the outcome is still unknown: retry later.
    expect(await verifier.verify({ ...request, requestId: newRequestId() })).toMatchObject(pending);
    // The same request delivered again (RPC rerun): the same answer, never a new challenge.
    expect(await verifier.verify(request)).toMatchObject(pending);
    expect(await statusOf(request.requestId)).toBe("pending");

    // The transaction is mined after all: the charge-outcomes job finds its receipt and the payment is verified,
    // with its charge.verified money event.
    const { txHash } = (await db.chargePayment.findFirstOrThrow({ where: { requestId: request.requestId } })) as { txHash: Hex };
    mined.set(txHash, receiptFor((Credential.deserialize(request.authorization).payload as { signature: Hex }).signature));
    await expect
      .poll(
        async () => {
          await resolveOutcomes();
          return statusOf(request.requestId);
        },
        { timeout: 10_000 },
      )
      .toBe("verified");
    const payment = await db.chargePayment.findFirstOrThrow({ where: { requestId: request.requestId } });
    expect(payment).toMatchObject({ blockNumber: 42n, servedRequestId: null });

    // The client's retry of the same credential is served: once.
    calls.length = 0;
    const retry = newRequestId();
    expect(await verifier.verify({ ...request, requestId: retry })).toMatchObject({ ok: true, paymentId: payment.id, txHash });
    expect(calls).toEqual([]);
    expect(await verifier.verify({ ...request, requestId: retry })).toMatchObject({ ok: true, paymentId: payment.id });
    expect(await verifier.verify({ ...request, requestId: newRequestId() })).toMatchObject({
      ok: false,
      problem: { type: "https://paymentauth.org/problems/invalid-challenge" },
    });
    expect((await db.chargePayment.findUniqueOrThrow({ where: { id: payment.id } })).servedRequestId).toBe(retry);
    expect(await db.chargePayment.count({ where: { challengeId: payment.challengeId } })).toBe(1);
  });

  it("the same credential sent again while its payment is still being verified: 503 payment-in-progress, not a new challenge", async () => {
    const { request } = await pullRequest();
    syncSend = "receipt";
    broadcastDelayMs = 500;
    try {
      const first = verifier.verify(request);
      await expect
        .poll(() => verifier.verify({ ...request, requestId: newRequestId() }), { timeout: 5_000 })
        .toMatchObject({ ok: false, problem: { type: "https://worldrouter.dev/problems/payment-in-progress", status: 503 } });
      expect(await first).toMatchObject({ ok: true });
    } finally {
      broadcastDelayMs = 0;
    }
  });

  it("refuses a transaction not valid yet (validAfter ahead) and a charge below MIN_CHARGE, before any chain call or claim", async () => {
    syncSend = "receipt";
    calls.length = 0;
    const notYet = await pullRequest(25n, { validAfter: Math.floor(Date.now() / 1000) + 20 });
    expect(await verifier.verify(notYet.request)).toMatchObject({
      ok: false,
      problem: { type: "https://paymentauth.org/problems/verification-failed", detail: expect.stringMatching(/not valid before/) },
    });
    const cheap = await pullRequest(19n);
    expect(await verifier.verify(cheap.request)).toMatchObject({
      ok: false,
      problem: {
        type: "https://paymentauth.org/problems/invalid-challenge",
        detail: expect.stringMatching(/below the minimum charge of 20/),
      },
    });
    expect(calls).toEqual([]);
    const valid = await pullRequest(25n, { validAfter: Math.floor(Date.now() / 1000) - 5 });
    expect(await verifier.verify(valid.request)).toMatchObject({ ok: true });
  });

  it("the sponsor's gas budget, shared in Redis, bounds each payer and all payers per window (429 / 503, nothing broadcast)", async () => {
    syncSend = "receipt";
    // Each test transaction reserves gas × maxFeePerGas = 600,000 × 24 gwei = 14,400 base units.
    const budget = config.sponsor.budget;
    const saved = { ...budget };
    try {
      Object.assign(budget, { perPayer: 20_000n, global: 10n ** 12n, windowSeconds: 3600 });
      // One payer's second charge in the window is over its budget.
      const payerKey = generatePrivateKey();
      const first = await pullRequestFrom(payerKey);
      expect(await verifier.verify(first)).toMatchObject({ ok: true });
      calls.length = 0;
      const second = await pullRequestFrom(payerKey);
      expect(await verifier.verify(second)).toMatchObject({
        ok: false,
        problem: { type: "https://worldrouter.dev/problems/sponsor-budget-exhausted", status: 429, retryAfter: expect.any(Number) },
      });
      expect(calls).toEqual([]);
      expect(await paymentsFor(second.requestId)).toBe(0);
      // All payers together: over the global budget, whoever pays.
      Object.assign(budget, { perPayer: 10n ** 12n, global: 1n });
      const other = await pullRequest();
      expect(await verifier.verify(other.request)).toMatchObject({
        ok: false,
        problem: { type: "https://worldrouter.dev/problems/sponsor-budget-exhausted", status: 503 },
      });
      // Nothing was paid: the same credential goes through once the budget allows it.
      Object.assign(budget, saved);
      expect(await verifier.verify(other.request)).toMatchObject({ ok: true });
    } finally {
      Object.assign(budget, saved);
    }
  });

  it("checks that need no chain reject before any chain call or claim", async () => {
    syncSend = "receipt";
    const { request } = await pullRequest();
    const tampered = { ...request, amount: "26" };
    calls.length = 0;
    expect(await verifier.verify(tampered)).toMatchObject({
      ok: false,
      problem: { type: "https://paymentauth.org/problems/invalid-challenge" },
    });
    const credential = Credential.deserialize(request.authorization);
    const garbage = Credential.serialize({ ...credential, payload: { type: "transaction", signature: "0x78c0" } } as never);
    expect(await verifier.verify({ ...request, authorization: garbage })).toMatchObject({
      ok: false,
      problem: { type: "https://paymentauth.org/problems/invalid-payload", detail: expect.stringMatching(/13 to 15/) },
    });
    expect(calls).toEqual([]);
    // Neither rejection claimed the challenge: the real credential still pays.
    expect(await verifier.verify(request)).toMatchObject({ ok: true });
  });
});

describe("VerifyChargeUseCase, recording a payment that settled on-chain", () => {
  // Postgres refuses the next N attempts at settling a charge payment `verified` (a trigger in this run's throwaway
  // database; the `pending` row written before the broadcast goes through). The attempts are counted by a sequence:
  // nextval() survives the failed statement's rollback, a table would not.
  async function failNextInserts(n: number) {
    await db.$executeRawUnsafe(`CREATE SEQUENCE IF NOT EXISTS "test_insert_attempts"`);
    await db.$executeRawUnsafe(`ALTER SEQUENCE "test_insert_attempts" RESTART WITH 1`);
    await db.$executeRawUnsafe(`CREATE OR REPLACE FUNCTION test_fail_insert() RETURNS trigger AS $$
      BEGIN
        IF NEW."status" = 'verified' AND nextval('test_insert_attempts') <= ${n} THEN RAISE EXCEPTION 'injected failure'; END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql`);
    await db.$executeRawUnsafe(
      `CREATE OR REPLACE TRIGGER "test_fail_insert" BEFORE INSERT OR UPDATE ON "charge_payments" FOR EACH ROW EXECUTE FUNCTION test_fail_insert()`,
    );
  }
  afterAll(async () => {
    await db.$executeRawUnsafe(`DROP TRIGGER IF EXISTS "test_fail_insert" ON "charge_payments"`);
  });

  it("retries a failed insert: the payment is recorded once and answered as paid", async () => {
    syncSend = "receipt";
    const { request } = await pullRequest();
    await failNextInserts(2);
    expect(await verifier.verify(request)).toMatchObject({ ok: true });
    expect(await paymentsFor(request.requestId)).toBe(1);
  });

  it("hands a record Postgres keeps refusing to the durable queue: 503 (no new challenge), then recorded once with its charge.verified money event", async () => {
    syncSend = "receipt";
    const { payer, request } = await pullRequest();
    const before = await counterValue("wr_charge_recording_deferred_total");
    // 5 attempts in the request, then the queued job fails twice more (retried after 1 s and 2 s) and succeeds.
    await failNextInserts(7);
    const result = await verifier.verify(request);
    expect(result).toMatchObject({
      ok: false,
      problem: {
        type: "https://worldrouter.dev/problems/payment-not-recorded",
        status: 503,
        detail: expect.stringMatching(new RegExp(`refunded to ${payer} automatically: do not pay this challenge again`)),
      },
    });
    expect(await counterValue("wr_charge_recording_deferred_total")).toBe(before + 1);
    expect(await statusOf(request.requestId)).toBe("pending");
    await expect.poll(() => statusOf(request.requestId), { timeout: 15_000, interval: 200 }).toBe("verified");
    const payment = await db.chargePayment.findFirstOrThrow({ where: { requestId: request.requestId } });
    expect(payment).toMatchObject({ payer, status: "verified" });
    const redis = new Redis(redisOptions(config.redis.url));
    try {
      const entries = await redis.xrange(moneyEventStreamKey(config.redis.namespace), "-", "+");
      const events = entries
        .map(([, fields]) => JSON.parse(fields[fields.indexOf(MONEY_EVENT_FIELD) + 1]!))
        .filter((event) => event.paymentId === payment.id);
      // Published before each attempt at settling the row (settlement applies the payment once, by its id).
      expect(events.length).toBeGreaterThanOrEqual(1);
      for (const event of events)
        expect(event).toMatchObject({ kind: "charge.verified", requestId: request.requestId, payer, amount: "25" });
    } finally {
      redis.disconnect();
    }
  }, 30_000);
});
