import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeFunctionData, parseEventLogs } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createTempoClients, tip20Abi } from "@worldrouter/chain";
import { startAnvil, type RunningAnvil } from "./anvil.js";
import { deployWorld } from "./world.js";

const dir = mkdtempSync(join(tmpdir(), "wr-anvil-state-"));
let anvil: RunningAnvil | undefined;
afterAll(async () => {
  await anvil?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("startAnvil({ stateFile })", () => {
  it("keeps the chain across a restart: contracts, balances, blocks and the Transfer logs reconciliation reads", async () => {
    const stateFile = join(dir, "chain-state.json");
    anvil = await startAnvil({ stateFile });
    const world = await deployWorld(anvil.rpcUrl, { payerCount: 1 });
    const payer = privateKeyToAccount(world.wallets[0]!.privateKey);
    const clients = createTempoClients({ rpcUrl: anvil.rpcUrl, chainId: world.chainId, feeToken: world.token.address });
    const receipt = await clients.walletClientFor(payer).sendTransactionSync({
      calls: [
        {
          to: world.token.address,
          data: encodeFunctionData({ abi: tip20Abi, functionName: "transfer", args: [world.payee.address, 1_234n] }),
        },
      ],
    });
    expect(receipt.status).toBe("success");
    const balance = (rpcClient: typeof clients.publicClient, address: `0x${string}`) =>
      rpcClient.readContract({ address: world.token.address, abi: tip20Abi, functionName: "balanceOf", args: [address] });
    const payeeBefore = await balance(clients.publicClient, world.payee.address);
    await anvil.stop();

    anvil = await startAnvil({ stateFile });
    const reloaded = createTempoClients({ rpcUrl: anvil.rpcUrl, chainId: world.chainId, feeToken: world.token.address }).publicClient;
    expect((await reloaded.getCode({ address: world.token.address }))?.length).toBeGreaterThan(2);
    expect(await balance(reloaded, world.payee.address)).toBe(payeeBefore);
    expect(await reloaded.getBlockNumber()).toBeGreaterThanOrEqual(receipt.blockNumber);
    const logs = await reloaded.getLogs({ address: world.token.address, fromBlock: receipt.blockNumber, toBlock: receipt.blockNumber });
    const transfers = parseEventLogs({ abi: tip20Abi, logs, eventName: "Transfer" });
    expect(transfers.some((t) => t.transactionHash === receipt.transactionHash && t.args.amount === 1_234n)).toBe(true);
  });

  it("starts a fresh chain without a state file", async () => {
    await anvil?.stop();
    anvil = await startAnvil();
    const { publicClient } = createTempoClients({
      rpcUrl: anvil.rpcUrl,
      chainId: 4217,
      feeToken: "0x20c0000000000000000000000000000000000000",
    });
    expect(await publicClient.getBlockNumber()).toBeLessThan(5n);
  });
});
