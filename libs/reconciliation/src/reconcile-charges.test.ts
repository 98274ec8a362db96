import { randomBytes, randomUUID } from "node:crypto";
import { createTempoClients, tip20Abi } from "@worldrouter/chain";
import type { World } from "@worldrouter/config";
import { deployWorld, startAnvil, type RunningAnvil } from "@worldrouter/devchain";
import pg from "pg";
import { encodeFunctionData, keccak256, stringToHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconcileCharges } from "./index.js";

/** Real local chain, real Postgres (the run's throwaway database): transfers made on-chain, rows written as the services do. */
let anvil: RunningAnvil;
let world: World;
let db: pg.Client;

beforeAll(async () => {
  anvil = await startAnvil();
  world = await deployWorld(anvil.rpcUrl);
  db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
}, 60_000);
afterAll(async () => {
  await db?.end();
  await anvil?.stop();
});

const clients = () => createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address });

async function transfer(fromKey: Hex, to: Hex, amount: bigint) {
  const receipt = await clients()
    .walletClientFor(privateKeyToAccount(fromKey))
    .sendTransactionSync({
      to: world.token.address,
      data: encodeFunctionData({
        abi: tip20Abi,
        functionName: "transferWithMemo",
        args: [to, amount, keccak256(stringToHex(randomUUID()))],
      }),
      gas: 1_000_000n,
    } as never);
  expect(receipt.status).toBe("success");
  return { txHash: receipt.transactionHash.toLowerCase() as Hex, blockNumber: receipt.blockNumber };
}

async function recordCharge(payer: Hex, amount: bigint, paid: { txHash: Hex; blockNumber: bigint }, status = "consumed") {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO charge_payments (id, "challengeId", "txHash", "requestId", payer, recipient, token, "chainId", amount, "blockNumber", status, "updatedAt")
     VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::"ChargePaymentStatus", now()) RETURNING id::text`,
    [
      randomUUID(),
      paid.txHash,
      `req_${randomUUID()}`,
      payer.toLowerCase(),
      world.payee.address,
      world.token.address,
      world.chainId,
      amount.toString(),
      paid.blockNumber.toString(),
      status,
    ],
  );
  return rows[0]!.id;
}

describe("reconcileCharges (local chain + Postgres)", () => {
  it("equals when the ledger knows every transfer, and names each difference when it does not", async () => {
    const [a, b, c] = world.wallets as [World["wallets"][0], World["wallets"][0], World["wallets"][0]];
    const fromBlock = await clients().publicClient.getBlockNumber();
    const paidA = await transfer(a.privateKey, world.payee.address, 1_000n);
    const paidB = await transfer(b.privateKey, world.payee.address, 2_000n);
    const idA = await recordCharge(a.address, 1_000n, paidA, "refunded");
    await recordCharge(b.address, 2_000n, paidB);
    // A's payment was refunded: payee → A on-chain, and a confirmed refund settlement in the ledger.
    const refund = await transfer(world.payee.privateKey, a.address, 1_000n);
    await db.query(
      `INSERT INTO settlements (id, kind, "chainId", amount, "txHash", status, "blockNumber", "chargePaymentId", "confirmedAt")
       VALUES (gen_random_uuid(), 'refund', $1, 1000, $2, 'confirmed', $3, $4::uuid, now())`,
      [world.chainId, refund.txHash, refund.blockNumber.toString(), idA],
    );
    const reconcile = async () =>
      reconcileCharges({
        db,
        publicClient: clients().publicClient,
        token: world.token.address,
        payee: world.payee.address,
        fromBlock,
        toBlock: await clients().publicClient.getBlockNumber(),
        chunkBlocks: 2n, // several getLogs calls even over a short range
      });

    const balanced = await reconcile();
    expect(balanced).toMatchObject({ ok: true, recordedTotal: 3_000n, onChainTotal: 3_000n, missingInLedger: [], missingOnChain: [] });
    expect(balanced.refunds).toMatchObject({ ok: true, recordedTotal: 1_000n, onChainTotal: 1_000n });

    // Money the ledger does not know: someone pays the payee directly.
    const direct = await transfer(c.privateKey, world.payee.address, 777n);
    const unknown = await reconcile();
    expect(unknown.ok).toBe(false);
    expect(unknown.missingInLedger).toEqual([direct.txHash]);
    expect(unknown.onChainTotal - unknown.recordedTotal).toBe(777n);

    // And a recorded payment the chain never saw.
    const phantom = { txHash: `0x${randomBytes(32).toString("hex")}` as Hex, blockNumber: direct.blockNumber };
    await recordCharge(c.address, 5n, phantom);
    const both = await reconcile();
    expect(both.missingOnChain).toEqual([phantom.txHash]);
    expect(both.missingInLedger).toEqual([direct.txHash]);
    expect(both.refunds.ok).toBe(true);
  });
});
