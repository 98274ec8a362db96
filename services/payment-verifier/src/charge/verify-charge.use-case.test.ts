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
import { METRICS, redisOptions } from "@worldrouter/runtime";
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
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PaymentVerifierModule } from "../payment-verifier.module.js";
import { VerifyChargeUseCase } from "./verify-charge.use-case.js";

/**
 * The use case against real Redis and Postgres and a scripted JSON-RPC node (real HTTP), to reach what a local
 * chain will not do on demand: a node that refuses the broadcast, or one whose sync send times out. The happy
 * paths against a real chain are in test/e2e.
 */
const TOKEN: Hex = "0x20c000000000000000000000e9343992dac325b3";
const PAYEE: Hex = "0x00000000000000000000000000000000000000aa";
const REALM = "verifier.test";
type SyncSend = "receipt" | "refuse" | "timeout";
let syncSend: SyncSend = "receipt";
const calls: string[] = [];

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
      if (method !== "eth_sendRawTransactionSync") return reply({ error: { code: -32601, message: "method not found" } });
      if (syncSend === "refuse") return reply({ error: { code: -32003, message: "insufficient funds for gas * price + value" } });
      if (syncSend === "timeout")
        return reply({
          error: { code: 4, message: "The transaction was added to the mempool but wasn't processed in 2s.", data: keccak256(params[0]) },
        });
      return reply({ result: receiptFor(params[0]) });
    });
  });
  await new Promise<void>((resolve) => node.listen(0, "127.0.0.1", resolve));
  config = loadConfig({
    ...process.env,
    WORLD_FILE: "/nonexistent",
    LOG_LEVEL: "silent",
    PUBLIC_URL: `https://${REALM}`,
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
async function pullRequest(amount = 25n) {
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
  const payer = privateKeyToAccount(generatePrivateKey());
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
    // The same credential for another request: the challenge is taken.
    expect(await verifier.verify({ ...request, requestId: newRequestId() })).toMatchObject({
      ok: false,
      problem: { type: "https://paymentauth.org/problems/invalid-challenge" },
    });
    // The same request delivered again (the RPC transport reruns a request whose replica died): the recorded answer,
    // with no chain call and no second payment.
    calls.length = 0;
    const again = await verifier.verify(request);
    expect(again).toMatchObject({ ok: true, paymentId: (result as { paymentId: string }).paymentId, payer, amount: "25" });
    expect(calls).toEqual([]);
    expect(await paymentsFor(request.requestId)).toBe(1);
  });

  it("a broadcast the node refuses releases the claims: nothing was paid, the same credential may be retried", async () => {
    const { request } = await pullRequest();
    syncSend = "refuse";
    const refused = await verifier.verify(request);
    expect(refused).toMatchObject({
      ok: false,
      problem: {
        type: "https://paymentauth.org/problems/verification-failed",
        detail: expect.stringMatching(/the chain refused the transaction: .*insufficient funds/),
      },
    });
    expect(await paymentsFor(request.requestId)).toBe(0);
    syncSend = "receipt";
    expect(await verifier.verify(request)).toMatchObject({ ok: true });
    expect(await paymentsFor(request.requestId)).toBe(1);
  });

  it("a broadcast whose outcome is unknown (sync send timed out) keeps the claims: the transaction may still be mined", async () => {
    const { request } = await pullRequest();
    syncSend = "timeout";
    const before = await counterValue("wr_charge_broadcast_unknown_total");
    expect(await verifier.verify(request)).toMatchObject({
      ok: false,
      problem: {
        type: "https://paymentauth.org/problems/verification-failed",
        detail: expect.stringMatching(/was broadcast but its outcome is unknown/),
      },
    });
    expect(await counterValue("wr_charge_broadcast_unknown_total")).toBe(before + 1);
    syncSend = "receipt";
    expect(await verifier.verify({ ...request, requestId: newRequestId() })).toMatchObject({
      ok: false,
      problem: {
        type: "https://paymentauth.org/problems/invalid-challenge",
        detail: expect.stringMatching(/already been paid or is being paid/),
      },
    });
    // The same request delivered again while its first run's outcome is unknown: a server problem (>= 500, so the
    // gateway issues no new challenge), never a new challenge to pay.
    expect(await verifier.verify(request)).toMatchObject({
      ok: false,
      problem: { type: "https://worldrouter.dev/problems/payment-verification-interrupted", status: 503 },
    });
    expect(await paymentsFor(request.requestId)).toBe(0);
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
  // Postgres refuses the next N inserts into charge_payments (a trigger in this run's throwaway database). The
  // attempts are counted by a sequence: nextval() survives the failed statement's rollback, a table would not.
  async function failNextInserts(n: number) {
    await db.$executeRawUnsafe(`CREATE SEQUENCE IF NOT EXISTS "test_insert_attempts"`);
    await db.$executeRawUnsafe(`ALTER SEQUENCE "test_insert_attempts" RESTART WITH 1`);
    await db.$executeRawUnsafe(`CREATE OR REPLACE FUNCTION test_fail_insert() RETURNS trigger AS $$
      BEGIN
        IF nextval('test_insert_attempts') <= ${n} THEN RAISE EXCEPTION 'injected failure'; END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql`);
    await db.$executeRawUnsafe(
      `CREATE OR REPLACE TRIGGER "test_fail_insert" BEFORE INSERT ON "charge_payments" FOR EACH ROW EXECUTE FUNCTION test_fail_insert()`,
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
    expect(await paymentsFor(request.requestId)).toBe(0);
    await expect.poll(() => paymentsFor(request.requestId), { timeout: 15_000, interval: 200 }).toBe(1);
    const payment = await db.chargePayment.findFirstOrThrow({ where: { requestId: request.requestId } });
    expect(payment).toMatchObject({ payer, status: "verified" });
    const redis = new Redis(redisOptions(config.redis.url));
    try {
      const entries = await redis.xrange(moneyEventStreamKey(config.redis.namespace), "-", "+");
      const events = entries
        .map(([, fields]) => JSON.parse(fields[fields.indexOf(MONEY_EVENT_FIELD) + 1]!))
        .filter((event) => event.paymentId === payment.id);
      expect(events).toEqual([expect.objectContaining({ kind: "charge.verified", requestId: request.requestId, payer })]);
    } finally {
      redis.disconnect();
    }
  }, 30_000);
});
