import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { maxUint256 } from "viem";
import { Actions, Addresses } from "viem/tempo";
import { channelEscrowArtifact, createTempoClients, tip20Abi } from "@worldrouter/chain";
import { readWorldFile, type World } from "@worldrouter/config";
import { startAnvil, type RunningAnvil } from "./anvil.js";
import { ALPHA_USD_ADDRESS, LOCAL_USDC_E_ADDRESS, deployWorld, writeWorldFile } from "./world.js";

let anvil: RunningAnvil;
let world: World;
beforeAll(async () => {
  anvil = await startAnvil();
  world = await deployWorld(anvil.rpcUrl);
});
afterAll(() => anvil?.stop());

const clients = () => createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: Addresses.pathUsd });

describe("deployWorld", () => {
  it("creates USDC.e at its usual local address and funds five payers, the fee payer and the payee", async () => {
    const { publicClient } = clients();
    expect(world.chainId).toBe(4217);
    expect(world.token).toEqual({ address: LOCAL_USDC_E_ADDRESS, decimals: 6, symbol: "USDC.e", name: "USDC.e" });
    expect(
      await publicClient.readContract({
        address: world.token.address,
        abi: tip20Abi,
        functionName: "balanceOf",
        args: [world.feePayer.address],
      }),
    ).toBe(1_000_000_000n);
    expect(
      await publicClient.readContract({
        address: world.token.address,
        abi: tip20Abi,
        functionName: "balanceOf",
        args: [world.payee.address],
      }),
    ).toBe(1_000_000_000n);
    expect(world.wallets).toHaveLength(5);
    for (const wallet of world.wallets) {
      expect(wallet.balance).toBe("1000000000");
      expect(
        await publicClient.readContract({ address: world.token.address, abi: tip20Abi, functionName: "balanceOf", args: [wallet.address] }),
      ).toBe(1_000_000_000n);
    }
    const addresses = [world.feePayer.address, world.payee.address, ...world.wallets.map((w) => w.address)];
    expect(new Set(addresses).size).toBe(addresses.length);
  });

  it("installs the escrow stand-in at the precompile address, approved by every payer", async () => {
    const { publicClient } = clients();
    expect(world.escrow).toBe("0x4d50500000000000000000000000000000000000");
    expect(await publicClient.getCode({ address: world.escrow })).toBe(channelEscrowArtifact.deployedBytecode);
    for (const wallet of world.wallets) {
      const allowance = await Actions.token.getAllowance(publicClient, {
        token: world.token.address,
        account: wallet.address,
        spender: world.escrow,
      });
      expect(allowance.amount).toBe(maxUint256);
    }
  });

  it("seeds FeeAMM liquidity so fees can be paid in USDC.e", async () => {
    const { publicClient } = clients();
    for (const validatorToken of [Addresses.pathUsd, ALPHA_USD_ADDRESS] as const) {
      const pool = await Actions.amm.getPool(publicClient, { userToken: world.token.address, validatorToken });
      expect(pool.reserveValidatorToken).toBeGreaterThan(0n);
    }
  });

  it("round-trips through the world file", () => {
    const dir = mkdtempSync(join(tmpdir(), "devchain-world-"));
    try {
      const path = join(dir, "nested", "world.json");
      writeWorldFile(path, world);
      expect(readWorldFile(path)).toEqual(world);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("startAnvil", () => {
  it("serves Tempo chain 4217 until stopped", async () => {
    const node = await startAnvil();
    const chainId = async () => {
      const response = await fetch(node.rpcUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}',
      });
      return Number(((await response.json()) as { result: string }).result);
    };
    expect(await chainId()).toBe(4217);
    await node.stop();
    await expect(chainId()).rejects.toThrow();
  });
});
