import { createTempoClients } from "@worldrouter/chain";
import { Challenge, Credential } from "mppx";
import { tempo } from "mppx/client";
import { Session } from "mppx/tempo";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { tokenBalance, useTestSystem } from "./harness.js";

const e2e = useTestSystem();
const SESSION_PATH = "/x402/v1/chat/completions/stream";

const body = (content: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], stream: true, ...extra });

/** An unmodified mppx session manager paying from one of the world's wallets. */
function sessionManager(walletIndex: number, maxDeposit = "10") {
  const world = e2e.system.world;
  const account = privateKeyToAccount(world.wallets[walletIndex]!.privateKey);
  const clients = createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address });
  const manager = tempo.session.manager({ account, getClient: () => clients.publicClient as never, maxDeposit });
  return { manager, account, clients };
}

async function channelOnChain(channelId: `0x${string}`) {
  const world = e2e.system.world;
  const { publicClient } = createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address });
  return publicClient.readContract({
    address: world.escrow,
    abi: Session.Precompile.escrowAbi,
    functionName: "getChannelState",
    args: [channelId],
  }) as Promise<{ settled: bigint; deposit: bigint; closeRequestedAt: number }>;
}

async function waitFor<T>(read: () => Promise<T>, until: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (until(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("session intent", () => {
  it("answers an unpaid request with a 402 session challenge: per-token price, llm_token, suggested deposit, v2 method details", async () => {
    const before = await e2e.db.query(`SELECT count(*)::int AS n FROM "channels"`);
    const response = await fetch(`${e2e.system.gatewayUrl}${SESSION_PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body("hello"),
    });
    expect(response.status).toBe(402);
    const challenge = Challenge.fromResponse(response);
    expect(challenge).toMatchObject({ method: "tempo", intent: "session", realm: "127.0.0.1" });
    const world = e2e.system.world;
    expect(challenge.request).toEqual({
      // gpt-4o-mini output: $0.60 per 1M tokens = 0.6 base units per token, asked as 1 whole base unit per unit.
      amount: "1",
      currency: world.token.address.toLowerCase(),
      recipient: world.payee.address.toLowerCase(),
      suggestedDeposit: "5000000",
      unitType: "llm_token",
      methodDetails: {
        chainId: world.chainId,
        escrowContract: world.escrow.toLowerCase(),
        feePayer: true,
        minVoucherDelta: "1",
        sessionProtocol: "v2",
      },
    });
    const problem = (await response.json()) as any;
    expect(problem).toMatchObject({
      type: "https://paymentauth.org/problems/payment-required",
      price: { unit: "llm_token", model: "gpt-4o-mini", inputPerMillion: "150000", outputPerMillion: "600000" },
    });
    expect((await e2e.db.query(`SELECT count(*)::int AS n FROM "channels"`)).rows[0].n).toBe(before.rows[0].n);
  });

  it("an unmodified mppx session client opens a channel (fee-sponsored) and streams a metered completion with receipts", async () => {
    const { manager, account } = sessionManager(0);
    const receipts: any[] = [];
    const data: string[] = [];
    const payerBefore = await tokenBalance(e2e.system.world, account.address);
    const stream = await (manager.sse as any)(`${e2e.system.gatewayUrl}${SESSION_PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body("Tell me a story about payment channels", { max_tokens: 200 }),
      onReceipt: (receipt: any) => receipts.push(receipt),
    });
    for await (const message of stream) data.push(message);
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    const content = chunks.map((c) => c.choices?.[0]?.delta?.content ?? "").join("");
    expect(content.length).toBeGreaterThan(0);
    // The final chunk carries usage and cost, as OpenAI's include_usage does.
    const last = chunks.at(-1);
    expect(last.choices).toEqual([]);
    expect(last.usage.completion_tokens).toBeGreaterThan(0);
    const cost = BigInt(last.cost.amount);
    expect(cost).toBeGreaterThan(0n);
    // The payment-receipt event closes the stream.
    expect(receipts).toHaveLength(1);
    const channelId = manager.channelId!.toLowerCase();
    expect(receipts[0]).toMatchObject({ method: "tempo", intent: "session", channelId, spent: cost.toString() });
    expect(BigInt(receipts[0].acceptedCumulative)).toBeGreaterThanOrEqual(cost);

    // The channel is on chain with the suggested deposit (the payer paid no gas: the open was sponsored) and on record.
    expect((await channelOnChain(channelId as `0x${string}`)).deposit).toBe(5_000_000n);
    expect(await tokenBalance(e2e.system.world, account.address)).toBe(payerBefore - 5_000_000n);
    const { rows } = await e2e.db.query(`SELECT * FROM "channels" WHERE "id" = $1`, [channelId]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ payer: account.address.toLowerCase(), status: "open", deposit: "5000000" });
    const vouchers = await e2e.db.query(`SELECT "cumulativeAmount"::text AS c FROM "vouchers" WHERE "channelId" = $1 ORDER BY "id"`, [
      channelId,
    ]);
    expect(vouchers.rows.length).toBeGreaterThanOrEqual(2); // the open's voucher, then the ones the stream asked for
    expect(vouchers.rows[0].c).toBe("1");
    // What the request spent is mirrored into Postgres through the money-event pipeline.
    const spent = await waitFor(
      async () => (await e2e.db.query(`SELECT "spent"::text AS s FROM "channels" WHERE "id" = $1`, [channelId])).rows[0].s,
      (s) => s === cost.toString(),
    );
    expect(spent).toBe(cost.toString());

    // A second request on the same channel is served from its balance: no transaction, same channel.
    const openTx = rows[0].openTxHash;
    const second: string[] = [];
    for await (const message of await (manager.sse as any)(`${e2e.system.gatewayUrl}${SESSION_PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body("And another one", { max_tokens: 50 }),
      onReceipt: (receipt: any) => receipts.push(receipt),
    }))
      second.push(message);
    expect(second.at(-1)).toBe("[DONE]");
    expect(manager.channelId!.toLowerCase()).toBe(channelId);
    expect(receipts).toHaveLength(2);
    expect(BigInt(receipts[1].spent)).toBeGreaterThan(cost);
    expect(
      (await e2e.db.query(`SELECT count(*)::int AS n FROM "channels" WHERE "payer" = $1`, [account.address.toLowerCase()])).rows[0].n,
    ).toBe(1);
    expect((await e2e.db.query(`SELECT "openTxHash" FROM "channels" WHERE "id" = $1`, [channelId])).rows[0].openTxHash).toBe(openTx);
    expect(await tokenBalance(e2e.system.world, account.address)).toBe(payerBefore - 5_000_000n);
  });

  it("tops up and closes: the close captures exactly what was spent, the ledger's revenue equals it and the payer gets the rest", async () => {
    const world = e2e.system.world;
    const { manager, account } = sessionManager(1);
    const payerBefore = await tokenBalance(world, account.address);
    const payeeBefore = await tokenBalance(world, world.payee.address);
    for await (const _ of await (manager.sse as any)(`${e2e.system.gatewayUrl}${SESSION_PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body("first request before a top-up", { max_tokens: 80 }),
    }));
    const channelId = manager.channelId!.toLowerCase() as `0x${string}`;
    await manager.topUp("1");
    expect((await channelOnChain(channelId)).deposit).toBe(6_000_000n);
    expect((await e2e.db.query(`SELECT "deposit"::text AS d FROM "channels" WHERE "id" = $1`, [channelId])).rows[0].d).toBe("6000000");
    for await (const _ of await (manager.sse as any)(`${e2e.system.gatewayUrl}${SESSION_PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body("second request after the top-up", { max_tokens: 80 }),
    }));

    const receipt = await manager.close();
    expect(receipt?.txHash).toMatch(/^0x[0-9a-f]{64}$/);
    const spent = BigInt(receipt!.spent);
    expect(spent).toBeGreaterThan(0n);
    // On chain: the channel is gone; the payee got what was spent (less the close's gas, which it pays in the token),
    // the payer everything else (its open and top-up were sponsored: no gas).
    expect(await channelOnChain(channelId)).toMatchObject({ deposit: 0n });
    const { publicClient } = createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address });
    const close = await publicClient.getTransactionReceipt({ hash: receipt!.txHash as `0x${string}` });
    const closeGas = (close.gasUsed * close.effectiveGasPrice + 10n ** 12n - 1n) / 10n ** 12n;
    expect(await tokenBalance(world, world.payee.address)).toBe(payeeBefore + spent - closeGas);
    expect(await tokenBalance(world, account.address)).toBe(payerBefore - spent);
    // In the ledger: the close's Settlement row, revenue for this channel = what the chain moved, deposit account settled to 0.
    const settled = await waitFor(
      async () =>
        (
          await e2e.db.query(
            `SELECT "amount"::text AS a, "txHash" FROM "settlements" WHERE "channelId" = $1 AND "kind" = 'channel_close'`,
            [channelId],
          )
        ).rows,
      (rows) => rows.length === 1,
    );
    expect(settled).toEqual([{ a: spent.toString(), txHash: receipt!.txHash!.toLowerCase() }]);
    const ledger = async (account: string) =>
      BigInt(
        (
          await e2e.db.query(
            `SELECT COALESCE(sum(e."amount"), 0)::text AS s FROM "ledger_entries" e JOIN "ledger_transactions" t ON t."id" = e."transactionId" WHERE t."reference" = $1 AND e."account" = $2`,
            [channelId, account],
          )
        ).rows[0].s,
      );
    const revenue = await waitFor(
      () => ledger("revenue:usage"),
      (r) => r === -spent,
    );
    expect(revenue).toBe(-spent);
    expect(await ledger(`liability:channel_deposit:${channelId}`)).toBe(0n);
    expect(await ledger(`asset:channel_escrow:${world.token.address.toLowerCase()}`)).toBe(0n);
    const row = (
      await e2e.db.query(`SELECT "status", "spent"::text AS s, "settledCumulative"::text AS c FROM "channels" WHERE "id" = $1`, [channelId])
    ).rows[0];
    expect(row).toEqual({ status: "closed", s: spent.toString(), c: spent.toString() });
  });

  it("refuses bad vouchers with their problem types and changes nothing; a closed channel takes none", async () => {
    const world = e2e.system.world;
    const { manager, account } = sessionManager(2);
    for await (const _ of await (manager.sse as any)(`${e2e.system.gatewayUrl}${SESSION_PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body("open a channel for the bad-voucher checks", { max_tokens: 20 }),
    }));
    const channelId = manager.channelId!.toLowerCase() as `0x${string}`;
    const state = async () =>
      (
        await e2e.db.query(
          `SELECT "acceptedCumulative"::text AS a, "spent"::text AS s, (SELECT count(*)::int FROM "vouchers" WHERE "channelId" = $1) AS n FROM "channels" WHERE "id" = $1`,
          [channelId],
        )
      ).rows[0];
    // Once the request's spending is mirrored (money events), nothing below may change the channel.
    const before = await waitFor(state, (row) => row.s !== "0");
    const accepted = BigInt(before.a);
    const sign = (signer: ReturnType<typeof privateKeyToAccount>, id: `0x${string}`, cumulativeAmount: bigint) =>
      signer.signTypedData({
        domain: Session.Precompile.Voucher.getVoucherDomain(world.escrow, world.chainId),
        types: Session.Precompile.Voucher.voucherTypes,
        primaryType: "Voucher",
        message: { channelId: id, cumulativeAmount },
      });
    const sendVoucher = async (id: `0x${string}`, cumulativeAmount: bigint, signature: `0x${string}`) => {
      const unpaid = await fetch(`${e2e.system.gatewayUrl}${SESSION_PATH}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: body("x"),
      });
      const challenge = Challenge.fromResponse(unpaid);
      const authorization = Credential.serialize({
        challenge,
        payload: { action: "voucher", channelId: id, cumulativeAmount: cumulativeAmount.toString(), signature },
        source: `did:pkh:eip155:${world.chainId}:${account.address}`,
      } as never);
      const response = await fetch(`${e2e.system.gatewayUrl}${SESSION_PATH}`, { method: "POST", headers: { authorization } });
      return { status: response.status, type: response.status === 204 ? undefined : ((await response.json()) as any).type };
    };
    const problems = "https://paymentauth.org/problems/";
    const bad = `0x${"11".repeat(64)}1c` as `0x${string}`;
    expect(await sendVoucher(channelId, accepted + 10n, bad)).toMatchObject({ status: 402, type: `${problems}session/invalid-signature` });
    const stranger = privateKeyToAccount(generatePrivateKey());
    expect(await sendVoucher(channelId, accepted + 10n, await sign(stranger, channelId, accepted + 10n))).toMatchObject({
      status: 402,
      type: `${problems}session/signer-mismatch`,
    });
    expect(await sendVoucher(channelId, 5_000_001n, await sign(account, channelId, 5_000_001n))).toMatchObject({
      status: 402,
      type: `${problems}session/amount-exceeds-deposit`,
    });
    expect(await sendVoucher(channelId, accepted - 1n, await sign(account, channelId, accepted - 1n))).toMatchObject({
      status: 402,
      type: `${problems}verification-failed`,
    });
    const unknown = `0x${"ab".repeat(32)}` as `0x${string}`;
    expect(await sendVoucher(unknown, 10n, await sign(account, unknown, 10n))).toMatchObject({
      status: 410,
      type: `${problems}session/channel-not-found`,
    });
    expect(await state()).toEqual(before);
    // The accepted voucher again: an idempotent repeat.
    expect(await sendVoucher(channelId, accepted, await sign(account, channelId, accepted))).toEqual({ status: 204, type: undefined });
    expect(await state()).toEqual(before);

    await manager.close();
    expect(await sendVoucher(channelId, accepted + 10n, await sign(account, channelId, accepted + 10n))).toMatchObject({
      status: 410,
      type: `${problems}session/channel-finalized`,
    });
  });
});
