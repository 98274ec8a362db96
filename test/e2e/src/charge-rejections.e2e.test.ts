import { Challenge, Credential, Receipt } from "mppx";
import { concat, encodeFunctionData, keccak256, stringToHex, toHex, type Hex } from "viem";
import { describe, expect, it } from "vitest";
import { DEV_MPP_SECRET } from "@worldrouter/config";
import { tip20Abi } from "@worldrouter/chain";
import { mppxClient, useTestSystem } from "./harness.js";

/** Every rejection: the right status and problem type, a fresh challenge, and no ledger/payment rows. */
const e2e = useTestSystem();

const url = () => `${e2e.system.gatewayUrl}/x402/v1/chat/completions`;
const body = (content: string) => JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }] });
const post = (payload: string, authorization?: string) =>
  fetch(url(), { method: "POST", headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) }, body: payload });

async function ledgerSnapshot() {
  const { rows } = await e2e.db.query(`SELECT (SELECT count(*) FROM charge_payments)::int AS payments, (SELECT count(*) FROM ledger_entries)::int AS entries`);
  return rows[0];
}

async function expectRejected(response: Response, status: number, type: string, detail?: RegExp) {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(text);
  expect(problem.type).toBe(type);
  if (detail) expect(problem.detail).toMatch(detail);
  if (status === 402) expect(response.headers.get("www-authenticate")).toMatch(/^Payment /);
  return problem;
}

/** A credential whose challenge we sign ourselves (the test knows the dev secret), to reach checks past the HMAC. */
function forgedCredential(challenge: Challenge.Challenge, overrides: Partial<Challenge.Challenge> & { request?: Record<string, unknown> }, payload: unknown) {
  const { id: _id, ...rest } = { ...challenge, ...overrides };
  const resigned = Challenge.from({ ...rest, secretKey: DEV_MPP_SECRET } as never);
  return Credential.serialize(Credential.from({ challenge: resigned, payload } as never));
}

describe("charge intent: bad input gets a precise answer and changes nothing", () => {
  it("unknown model → 404 with an OpenAI-style error naming /v1/models", async () => {
    const response = await post(JSON.stringify({ model: "gpt-99", messages: [{ role: "user", content: "x" }] }));
    const problem = await expectRejected(response, 404, "https://worldrouter.dev/problems/model-not-found", /\/v1\/models/);
    expect(problem.error).toMatchObject({ code: "model_not_found", param: "model" });
  });

  it("malformed JSON → 400; invalid parameter → 400 naming it; oversized body → 413", async () => {
    await expectRejected(await post("{not json"), 400, "https://worldrouter.dev/problems/invalid-json");
    const bad = await expectRejected(await post(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }], temperature: 7 })), 400, "https://worldrouter.dev/problems/invalid-request");
    expect(bad.param).toBe("temperature");
    await expectRejected(await post(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x".repeat(2_000_000) }] })), 413, "https://worldrouter.dev/problems/body-too-large");
  });

  it("malformed credential → malformed-credential", async () => {
    const before = await ledgerSnapshot();
    await expectRejected(await post(body("a"), "Payment not-base64url!!"), 402, "https://paymentauth.org/problems/malformed-credential");
    expect(await ledgerSnapshot()).toEqual(before);
  });

  it("tampered challenge (amount lowered, HMAC kept) → invalid-challenge", async () => {
    const before = await ledgerSnapshot();
    const challenge = Challenge.fromResponse(await post(body("tamper")));
    const tampered = { ...challenge, request: { ...challenge.request, amount: "1" } };
    const credential = Credential.serialize(Credential.from({ challenge: tampered, payload: { type: "hash", hash: `0x${"1".repeat(64)}` } } as never));
    await expectRejected(await post(body("tamper"), credential), 402, "https://paymentauth.org/problems/invalid-challenge", /not issued by this server/);
    expect(await ledgerSnapshot()).toEqual(before);
  });

  it("expired challenge → payment-expired", async () => {
    const challenge = Challenge.fromResponse(await post(body("late")));
    const credential = forgedCredential(challenge, { expires: new Date(Date.now() - 1000).toISOString() }, { type: "hash", hash: `0x${"2".repeat(64)}` });
    await expectRejected(await post(body("late"), credential), 402, "https://paymentauth.org/problems/payment-expired");
  });

  it("a credential for one body cannot pay for another (digest binding)", async () => {
    const { mppx } = mppxClient(e2e.system.world, 2);
    const credential = await mppx.createCredential(await post(body("cheap")));
    const before = await ledgerSnapshot();
    await expectRejected(await post(body("a different, dearer request body"), credential), 402, "https://paymentauth.org/problems/invalid-challenge", /body differs/);
    expect(await ledgerSnapshot()).toEqual(before);
  });

  it("challenge terms that differ from ours (recipient, token, chain, amount) → invalid-challenge", async () => {
    const challenge = Challenge.fromResponse(await post(body("terms")));
    const request = challenge.request as Record<string, any>;
    for (const changed of [
      { ...request, recipient: "0x00000000000000000000000000000000000000ee" },
      { ...request, currency: "0x20c0000000000000000000000000000000000001" },
      { ...request, methodDetails: { ...request.methodDetails, chainId: 1 } },
      { ...request, amount: "1" },
    ]) {
      const credential = forgedCredential(challenge, { request: changed }, { type: "hash", hash: `0x${"3".repeat(64)}` });
      await expectRejected(await post(body("terms"), credential), 402, "https://paymentauth.org/problems/invalid-challenge", /terms do not match/);
    }
  });

  it("a pushed transfer of too little, or to the wrong recipient → verification-failed, and the hash cannot be reused", async () => {
    const { clients, account } = mppxClient(e2e.system.world, 3);
    const response = await post(body("underpay"));
    const challenge = Challenge.fromResponse(response);
    const amount = BigInt((challenge.request as { amount: string }).amount);
    const memo = attributionMemo(challenge.realm, challenge.id);
    const wallet = clients.walletClientFor(account);
    for (const [to, value] of [[e2e.system.world.payee.address, amount - 1n], ["0x00000000000000000000000000000000000000ee", amount]] as const) {
      const hash = await wallet.sendTransaction({ to: e2e.system.world.token.address, data: encodeFunctionData({ abi: tip20Abi, functionName: "transferWithMemo", args: [to, value, memo] }), gas: 1_000_000n } as never);
      await clients.publicClient.waitForTransactionReceipt({ hash });
      const credential = Credential.serialize(Credential.from({ challenge, payload: { type: "hash", hash }, source: `did:pkh:eip155:${e2e.system.world.chainId}:${account.address}` } as never));
      const before = await ledgerSnapshot();
      const problem = await expectRejected(await post(body("underpay"), credential), 402, "https://paymentauth.org/problems/verification-failed");
      expect(problem.detail.length).toBeGreaterThan(10);
      expect(await ledgerSnapshot()).toEqual(before);
    }
  });

  it("a reverted transaction, or a hash that already paid another request → verification-failed", async () => {
    const { clients, account, mppx } = mppxClient(e2e.system.world, 1, "push");
    const wallet = clients.walletClientFor(account);
    const challenge = Challenge.fromResponse(await post(body("reverted")));
    const memo = attributionMemo(challenge.realm, challenge.id);
    const tooMuch = 10n ** 15n; // far above the wallet's balance: the transfer reverts
    const reverted = await wallet.sendTransaction({ to: e2e.system.world.token.address, data: encodeFunctionData({ abi: tip20Abi, functionName: "transferWithMemo", args: [e2e.system.world.payee.address, tooMuch, memo] }), gas: 1_000_000n } as never);
    expect((await clients.publicClient.waitForTransactionReceipt({ hash: reverted })).status).toBe("reverted");
    const source = `did:pkh:eip155:${e2e.system.world.chainId}:${account.address}`;
    const before = await ledgerSnapshot();
    await expectRejected(await post(body("reverted"), Credential.serialize(Credential.from({ challenge, payload: { type: "hash", hash: reverted }, source } as never))), 402, "https://paymentauth.org/problems/verification-failed");

    const paid = await mppx.fetch(url(), { method: "POST", headers: { "content-type": "application/json" }, body: body("paid once") });
    expect(paid.status).toBe(200);
    await paid.text();
    const paidHash = Receipt.deserialize(paid.headers.get("payment-receipt")!).reference;
    // Let settlement finish the paid request's ledger first, so the snapshot below is stable.
    await expect.poll(async () => (await e2e.db.query(`SELECT status FROM charge_payments WHERE "txHash" = $1`, [paidHash.toLowerCase()])).rows[0]?.status, { timeout: 15_000 }).toBe("consumed");
    await expect.poll(async () => (await e2e.db.query(`SELECT count(*)::int AS n FROM settlements WHERE "txHash" = $1`, [paidHash.toLowerCase()])).rows[0].n, { timeout: 15_000 }).toBe(1);
    const next = Challenge.fromResponse(await post(body("replayed hash")));
    const afterPaid = await ledgerSnapshot();
    await expectRejected(await post(body("replayed hash"), Credential.serialize(Credential.from({ challenge: next, payload: { type: "hash", hash: paidHash }, source } as never))), 402, "https://paymentauth.org/problems/verification-failed");
    expect(await ledgerSnapshot()).toEqual(afterPaid);
    expect(afterPaid.payments).toBe(before.payments + 1);
  });

  it("the same credential sent 50× concurrently is accepted exactly once", async () => {
    const { mppx } = mppxClient(e2e.system.world, 4);
    const credential = await mppx.createCredential(await post(body("fifty")));
    const responses = await Promise.all(Array.from({ length: 50 }, () => post(body("fifty"), credential)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 402)).toHaveLength(49);
    for (const r of responses) await r.text();
    const { rows } = await e2e.db.query(`SELECT count(*)::int AS n FROM charge_payments WHERE "requestId" IN (SELECT "requestId" FROM charge_payments) AND "challengeId" = $1`, [Credential.deserialize(credential).challenge.id]);
    expect(rows[0].n).toBe(1);
  });
});

/** MPP attribution memo (PROTOCOL.md): tag, version, realm fingerprint, no client id, challenge nonce. */
function attributionMemo(realm: string, challengeId: string): Hex {
  const fingerprint = (value: string, bytes: number) => keccak256(stringToHex(value)).slice(0, 2 + bytes * 2) as Hex;
  return concat(["0xef1ed712", "0x01", fingerprint(realm, 10), toHex(0, { size: 10 }), fingerprint(challengeId, 7)]);
}
