import { createTempoClients } from "@worldrouter/chain";
import { Challenge, Credential } from "mppx";
import { tempo } from "mppx/client";
import { Session } from "mppx/tempo";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { tokenBalance, useTestSystem } from "./harness.js";

/**
 * Sessions with two processes of every service: many requests on ONE channel at once through both gateways, each
 * paying with the channel's accepted voucher. Zero overspend across replicas, and after the close the chain and the
 * ledger agree.
 */
const e2e = useTestSystem({ SESSION_VOUCHERS_PER_SECOND: "100000" }, undefined, { replicas: 2 });
const SESSION_PATH = "/x402/v1/chat/completions/stream";
const chat = (content: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], ...extra });

describe("session intent over two replicas of every service", () => {
  it("60 concurrent requests on one channel through two gateways: never spent beyond accepted; chain = ledger after close", async () => {
    const world = e2e.system.world;
    const account = privateKeyToAccount(world.wallets[3]!.privateKey);
    const clients = createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address });
    const manager = tempo.session.manager({ account, getClient: () => clients.publicClient as never, maxDeposit: "10" });
    const payeeBefore = await tokenBalance(world, world.payee.address);
    const payerBefore = await tokenBalance(world, account.address);
    for await (const _ of await (manager.sse as any)(`${e2e.system.gatewayUrls[0]}${SESSION_PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: chat("open the channel", { stream: true, max_tokens: 20 }),
    }));
    const channelId = manager.channelId!.toLowerCase() as `0x${string}`;

    // One voucher authorising a fixed amount more than is spent now; every request presents it (an idempotent repeat).
    const channel = async () =>
      (await e2e.db.query(`SELECT "acceptedCumulative"::text AS a, "spent"::text AS s FROM "channels" WHERE "id" = $1`, [channelId]))
        .rows[0];
    const cumulative = BigInt((await channel()).a) + 400n;
    const signature = await account.signTypedData({
      domain: Session.Precompile.Voucher.getVoucherDomain(world.escrow, world.chainId),
      types: Session.Precompile.Voucher.voucherTypes,
      primaryType: "Voucher",
      message: { channelId, cumulativeAmount: cumulative },
    });
    const credentialFor = async (gateway: string) => {
      const unpaid = await fetch(`${gateway}${SESSION_PATH}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: chat("x"),
      });
      return Credential.serialize({
        challenge: Challenge.fromResponse(unpaid),
        payload: { action: "voucher", channelId, cumulativeAmount: cumulative.toString(), signature },
        source: `did:pkh:eip155:${world.chainId}:${account.address}`,
      } as never);
    };
    const credentials = await Promise.all(e2e.system.gatewayUrls.map(credentialFor));
    const responses = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const gateway = i % 2;
        const response = await fetch(`${e2e.system.gatewayUrls[gateway]}${SESSION_PATH}`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: credentials[gateway]! },
          body: chat(`request ${i}`, { max_tokens: 20 }),
        });
        const body = (await response.json()) as any;
        return { status: response.status, type: body.type as string | undefined };
      }),
    );
    const served = responses.filter((r) => r.status === 200).length;
    const refused = responses.filter((r) => r.status === 402);
    expect(served).toBeGreaterThan(0);
    expect(served + refused.length).toBe(60);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((r) => r.type === "https://paymentauth.org/problems/session/insufficient-balance")).toBe(true);

    // Close with the highest voucher (the manager does not know the one signed above): 204 + a receipt with the close tx.
    const closing = await fetch(`${e2e.system.gatewayUrls[1]}${SESSION_PATH}`, {
      method: "POST",
      headers: {
        authorization: Credential.serialize({
          challenge: Challenge.fromResponse(
            await fetch(`${e2e.system.gatewayUrls[1]}${SESSION_PATH}`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: chat("x"),
            }),
          ),
          payload: { action: "close", channelId, cumulativeAmount: cumulative.toString(), signature },
          source: `did:pkh:eip155:${world.chainId}:${account.address}`,
        } as never),
      },
    });
    expect(closing.status).toBe(204);
    const receipt = JSON.parse(Buffer.from(closing.headers.get("payment-receipt")!, "base64url").toString("utf8")) as {
      spent: string;
      txHash: string;
    };
    const spent = BigInt(receipt.spent);
    expect(spent).toBeLessThanOrEqual(cumulative);
    // Chain: the payer paid exactly what was spent (sponsored open, no gas), the payee got it (less its close gas).
    expect(await tokenBalance(world, account.address)).toBe(payerBefore - spent);
    const close = await clients.publicClient.getTransactionReceipt({ hash: receipt.txHash as `0x${string}` });
    const closeGas = (close.gasUsed * close.effectiveGasPrice + 10n ** 12n - 1n) / 10n ** 12n;
    expect(await tokenBalance(world, world.payee.address)).toBe(payeeBefore + spent - closeGas);
    // Ledger: every request's spending mirrored once (by either settlement replica), revenue = what the chain paid.
    const deadline = Date.now() + 20_000;
    let revenue = 0n;
    while (Date.now() < deadline) {
      revenue = BigInt(
        (
          await e2e.db.query(
            `SELECT COALESCE(-sum(e."amount"), 0)::text AS s FROM "ledger_entries" e JOIN "ledger_transactions" t ON t."id" = e."transactionId" WHERE t."reference" = $1 AND e."account" = 'revenue:usage'`,
            [channelId],
          )
        ).rows[0].s,
      );
      if (revenue === spent) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(revenue).toBe(spent);
    expect(await channel()).toEqual({ a: cumulative.toString(), s: spent.toString() });
  });
});
