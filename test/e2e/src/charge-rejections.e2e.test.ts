import { Challenge, Credential, Receipt } from "mppx";
import { concat, encodeFunctionData, fromRlp, keccak256, stringToHex, toHex, toRlp, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { prepareTransactionRequest, signTransaction } from "viem/actions";
import { Addresses } from "viem/tempo";
import { describe, expect, it } from "vitest";
import { DEV_MPP_SECRET } from "@worldrouter/config";
import { tip20Abi } from "@worldrouter/chain";
import { mppxClient, useTestSystem } from "./harness.js";

/** Every rejection: the right status and problem type, a fresh challenge, and no ledger/payment rows. */
const e2e = useTestSystem();

const url = () => `${e2e.system.gatewayUrl}/x402/v1/chat/completions`;
const body = (content: string) => JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }] });
const post = (payload: string, authorization?: string) =>
  fetch(url(), {
    method: "POST",
    headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
    body: payload,
  });

async function ledgerSnapshot() {
  const { rows } = await e2e.db.query(
    `SELECT (SELECT count(*) FROM charge_payments)::int AS payments, (SELECT count(*) FROM ledger_entries)::int AS entries`,
  );
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
function forgedCredential(
  challenge: Challenge.Challenge,
  overrides: Partial<Challenge.Challenge> & { request?: Record<string, unknown> },
  payload: unknown,
) {
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
    const bad = await expectRejected(
      await post(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }], temperature: 7 })),
      400,
      "https://worldrouter.dev/problems/invalid-request",
    );
    expect(bad.param).toBe("temperature");
    await expectRejected(
      await post(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x".repeat(2_000_000) }] })),
      413,
      "https://worldrouter.dev/problems/body-too-large",
    );
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
    const credential = Credential.serialize(
      Credential.from({ challenge: tampered, payload: { type: "hash", hash: `0x${"1".repeat(64)}` } } as never),
    );
    await expectRejected(
      await post(body("tamper"), credential),
      402,
      "https://paymentauth.org/problems/invalid-challenge",
      /not issued by this server/,
    );
    expect(await ledgerSnapshot()).toEqual(before);
  });

  it("expired challenge → payment-expired", async () => {
    const challenge = Challenge.fromResponse(await post(body("late")));
    const credential = forgedCredential(
      challenge,
      { expires: new Date(Date.now() - 1000).toISOString() },
      { type: "hash", hash: `0x${"2".repeat(64)}` },
    );
    await expectRejected(await post(body("late"), credential), 402, "https://paymentauth.org/problems/payment-expired");
  });

  it("a credential for one body cannot pay for another (digest binding)", async () => {
    const { mppx } = mppxClient(e2e.system.world, 2);
    const credential = await mppx.createCredential(await post(body("cheap")));
    const before = await ledgerSnapshot();
    await expectRejected(
      await post(body("a different, dearer request body"), credential),
      402,
      "https://paymentauth.org/problems/invalid-challenge",
      /body differs/,
    );
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
      await expectRejected(
        await post(body("terms"), credential),
        402,
        "https://paymentauth.org/problems/invalid-challenge",
        /terms do not match/,
      );
    }
  });

  it("a pushed transfer of too little, or to the wrong recipient → verification-failed, and the hash cannot be reused", async () => {
    const { clients, account } = mppxClient(e2e.system.world, 3);
    const response = await post(body("underpay"));
    const challenge = Challenge.fromResponse(response);
    const amount = BigInt((challenge.request as { amount: string }).amount);
    const memo = attributionMemo(challenge.realm, challenge.id);
    const wallet = clients.walletClientFor(account);
    for (const [to, value] of [
      [e2e.system.world.payee.address, amount - 1n],
      ["0x00000000000000000000000000000000000000ee", amount],
    ] as const) {
      const hash = await wallet.sendTransaction({
        to: e2e.system.world.token.address,
        data: encodeFunctionData({ abi: tip20Abi, functionName: "transferWithMemo", args: [to, value, memo] }),
        gas: 1_000_000n,
      } as never);
      await clients.publicClient.waitForTransactionReceipt({ hash });
      const credential = Credential.serialize(
        Credential.from({
          challenge,
          payload: { type: "hash", hash },
          source: `did:pkh:eip155:${e2e.system.world.chainId}:${account.address}`,
        } as never),
      );
      const before = await ledgerSnapshot();
      const problem = await expectRejected(
        await post(body("underpay"), credential),
        402,
        "https://paymentauth.org/problems/verification-failed",
      );
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
    const reverted = await wallet.sendTransaction({
      to: e2e.system.world.token.address,
      data: encodeFunctionData({ abi: tip20Abi, functionName: "transferWithMemo", args: [e2e.system.world.payee.address, tooMuch, memo] }),
      gas: 1_000_000n,
    } as never);
    expect((await clients.publicClient.waitForTransactionReceipt({ hash: reverted })).status).toBe("reverted");
    const source = `did:pkh:eip155:${e2e.system.world.chainId}:${account.address}`;
    const before = await ledgerSnapshot();
    await expectRejected(
      await post(
        body("reverted"),
        Credential.serialize(Credential.from({ challenge, payload: { type: "hash", hash: reverted }, source } as never)),
      ),
      402,
      "https://paymentauth.org/problems/verification-failed",
    );

    const paid = await mppx.fetch(url(), { method: "POST", headers: { "content-type": "application/json" }, body: body("paid once") });
    expect(paid.status).toBe(200);
    await paid.text();
    const paidHash = Receipt.deserialize(paid.headers.get("payment-receipt")!).reference;
    // Let settlement finish the paid request's ledger first, so the snapshot below is stable.
    await expect
      .poll(
        async () =>
          (await e2e.db.query(`SELECT status FROM charge_payments WHERE "txHash" = $1`, [paidHash.toLowerCase()])).rows[0]?.status,
        { timeout: 15_000 },
      )
      .toBe("consumed");
    await expect
      .poll(
        async () =>
          (await e2e.db.query(`SELECT count(*)::int AS n FROM settlements WHERE "txHash" = $1`, [paidHash.toLowerCase()])).rows[0].n,
        { timeout: 15_000 },
      )
      .toBe(1);
    const next = Challenge.fromResponse(await post(body("replayed hash")));
    const afterPaid = await ledgerSnapshot();
    await expectRejected(
      await post(
        body("replayed hash"),
        Credential.serialize(Credential.from({ challenge: next, payload: { type: "hash", hash: paidHash }, source } as never)),
      ),
      402,
      "https://paymentauth.org/problems/verification-failed",
    );
    expect(await ledgerSnapshot()).toEqual(afterPaid);
    expect(afterPaid.payments).toBe(before.payments + 1);
  });

  it("the same credential sent 50× concurrently is accepted exactly once", async () => {
    const { mppx } = mppxClient(e2e.system.world, 4);
    const credential = await mppx.createCredential(await post(body("fifty")));
    const responses = await Promise.all(Array.from({ length: 50 }, () => post(body("fifty"), credential)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    // The duplicates arrive while the first is being verified: retry later, never a new challenge (mppx pays one at once).
    expect(statuses.filter((s) => s === 503)).toHaveLength(49);
    for (const r of responses.filter((r) => r.status === 503)) {
      expect(r.headers.get("www-authenticate")).toBeNull();
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(((await r.json()) as { type: string }).type).toBe("https://worldrouter.dev/problems/payment-in-progress");
    }
    for (const r of responses) if (!r.bodyUsed) await r.text();
    const { rows } = await e2e.db.query(
      `SELECT count(*)::int AS n FROM charge_payments WHERE "requestId" IN (SELECT "requestId" FROM charge_payments) AND "challengeId" = $1`,
      [Credential.deserialize(credential).challenge.id],
    );
    expect(rows[0].n).toBe(1);
    // Let settlement book the one served request (its usage event lingers a moment), so later snapshots are stable.
    await expect
      .poll(
        async () =>
          (
            await e2e.db.query(
              `SELECT count(*)::int AS n FROM inference_requests r JOIN charge_payments p ON p.id = r."chargePaymentId" WHERE p."challengeId" = $1`,
              [Credential.deserialize(credential).challenge.id],
            )
          ).rows[0].n,
        { timeout: 15_000 },
      )
      .toBe(1);
  });
});

describe("charge intent, pull mode: a sponsored transaction that breaks a rule is refused before it reaches the chain", () => {
  type Call = { to: Hex; data: Hex };
  const transferWithMemo = (to: Hex, amount: bigint, memo: Hex): Call => ({
    to: e2e.system.world.token.address,
    data: encodeFunctionData({ abi: tip20Abi, functionName: "transferWithMemo", args: [to, amount, memo] }),
  });

  /** A fresh 402 for `content`, and the transfer its challenge asks for. */
  async function challengeFor(content: string) {
    const response = await post(body(content));
    const header = response.headers.get("www-authenticate")!;
    const challenge = Challenge.fromResponse(response);
    const amount = BigInt((challenge.request as { amount: string }).amount);
    return {
      challenge,
      header,
      amount,
      payment: transferWithMemo(e2e.system.world.payee.address, amount, attributionMemo(challenge.realm, challenge.id)),
    };
  }

  /** A 0x78 fee-payer envelope signed the way mppx's client signs one, with our choice of calls. */
  async function sponsoredEnvelope(account: PrivateKeyAccount, calls: Call[]): Promise<Hex> {
    const { clients } = mppxClient(e2e.system.world, 0);
    const prepared = (await prepareTransactionRequest(clients.publicClient, {
      account,
      calls,
      nonceKey: "expiring",
      validBefore: Math.floor(Date.now() / 1000) + 25,
    } as never)) as Record<string, unknown>;
    delete prepared.feeToken;
    return signTransaction(clients.publicClient, { ...prepared, account, gas: (prepared.gas as bigint) + 5000n, feePayer: true } as never);
  }

  const credentialFor = (challenge: Challenge.Challenge, signature: Hex) =>
    Credential.serialize(Credential.from({ challenge, payload: { type: "transaction", signature } } as never));
  /** Rewrites RLP fields of a serialized envelope (no re-signing). */
  const editFields = (serialized: Hex, edit: (fields: unknown[]) => void): Hex => {
    const fields = fromRlp(`0x${serialized.slice(4)}`, "hex") as unknown[];
    edit(fields);
    return `${serialized.slice(0, 4)}${toRlp(fields as Hex[]).slice(2)}` as Hex;
  };

  async function expectRefused(content: string, challenge: Challenge.Challenge, signature: Hex, type: string, detail: RegExp) {
    const before = await ledgerSnapshot();
    await expectRejected(await post(body(content), credentialFor(challenge, signature)), 402, type, detail);
    expect(await ledgerSnapshot()).toEqual(before);
  }

  const verificationFailed = "https://paymentauth.org/problems/verification-failed";
  const payer = () => privateKeyToAccount(e2e.system.world.wallets[0]!.privateKey);

  it("two calls (the payment plus another transfer) → verification-failed", async () => {
    const { challenge, payment } = await challengeFor("two calls");
    const signature = await sponsoredEnvelope(payer(), [
      payment,
      transferWithMemo(e2e.system.world.payee.address, 1n, attributionMemo(challenge.realm, challenge.id)),
    ]);
    await expectRefused("two calls", challenge, signature, verificationFailed, /expected exactly one call .* got 2/);
  });

  it("a memo bound to another challenge, or a transfer of the wrong amount → verification-failed", async () => {
    const { challenge, amount } = await challengeFor("wrong memo");
    const other = await challengeFor("another request");
    const wrongMemo = await sponsoredEnvelope(payer(), [
      transferWithMemo(e2e.system.world.payee.address, amount, attributionMemo(challenge.realm, other.challenge.id)),
    ]);
    await expectRefused("wrong memo", challenge, wrongMemo, verificationFailed, /memo is not bound to this challenge/);
    const wrongAmount = await sponsoredEnvelope(payer(), [
      transferWithMemo(e2e.system.world.payee.address, amount - 1n, attributionMemo(challenge.realm, challenge.id)),
    ]);
    await expectRefused("wrong memo", challenge, wrongAmount, verificationFailed, new RegExp(`transfer is for ${amount - 1n} base units`));
  });

  it("a fee token other than the sponsor's → verification-failed", async () => {
    const { challenge, payment } = await challengeFor("fee token");
    const signature = editFields(await sponsoredEnvelope(payer(), [payment]), (fields) => (fields[10] = Addresses.pathUsd));
    await expectRefused(
      "fee token",
      challenge,
      signature,
      verificationFailed,
      /fee token 0x20c0000000000000000000000000000000000000 is not accepted/,
    );
  });

  it("an envelope naming another sender than the signer, a tampered signature, or no sponsorship → refused", async () => {
    const { challenge, payment } = await challengeFor("sender");
    const signature = await sponsoredEnvelope(payer(), [payment]);
    const otherSender = editFields(signature, (fields) => (fields[11] = e2e.system.world.wallets[1]!.address));
    await expectRefused("sender", challenge, otherSender, verificationFailed, /envelope names sender .* but the signature is/);
    const badV = editFields(signature, (fields) => (fields[13] = `${(fields[13] as string).slice(0, -2)}05`));
    await expectRefused("sender", challenge, badV, "https://paymentauth.org/problems/invalid-payload", /malformed sender signature: v = 5/);
    const { clients } = mppxClient(e2e.system.world, 0);
    const unsponsored = await signTransaction(
      clients.publicClient,
      (await prepareTransactionRequest(clients.publicClient, {
        account: payer(),
        calls: [payment],
        nonceKey: "expiring",
        validBefore: Math.floor(Date.now() / 1000) + 25,
      } as never)) as never,
    );
    await expectRefused("sender", challenge, unsponsored, verificationFailed, /not fee-sponsored/);
  });

  it("a transfer that would revert (payer without funds) fails simulation; the challenge stays payable", async () => {
    const { challenge, header, payment } = await challengeFor("no funds");
    const broke = privateKeyToAccount(generatePrivateKey());
    await expectRefused(
      "no funds",
      challenge,
      await sponsoredEnvelope(broke, [payment]),
      verificationFailed,
      /the transfer would fail on-chain/,
    );
    // Nothing was broadcast, so the refusal released the challenge: a funded payer can still pay it.
    const { mppx } = mppxClient(e2e.system.world, 0);
    const credential = await mppx.createCredential(new Response(null, { status: 402, headers: { "www-authenticate": header } }));
    const paid = await post(body("no funds"), credential);
    expect(paid.status, await paid.clone().text()).toBe(200);
    await paid.text();
  });
});

/** MPP attribution memo (PROTOCOL.md): tag, version, realm fingerprint, no client id, challenge nonce. */
function attributionMemo(realm: string, challengeId: string): Hex {
  const fingerprint = (value: string, bytes: number) => keccak256(stringToHex(value)).slice(0, 2 + bytes * 2) as Hex;
  return concat(["0xef1ed712", "0x01", fingerprint(realm, 10), toHex(0, { size: 10 }), fingerprint(challengeId, 7)]);
}
