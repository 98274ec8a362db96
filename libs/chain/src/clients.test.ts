import { createServer } from "node:http";
import { describe, expect, it } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import { USDC_E_ADDRESS, TEMPO_MAINNET_CHAIN_ID } from "./constants.js";
import { createTempoClients } from "./clients.js";

describe("createTempoClients", () => {
  it("puts viem's tempo chain on the given rpc url, chain id and fee token", () => {
    const clients = createTempoClients({ rpcUrl: "http://127.0.0.1:9545", chainId: 42431, feeToken: USDC_E_ADDRESS });
    expect(clients.chain).toMatchObject({ id: 42431, feeToken: USDC_E_ADDRESS, rpcUrls: { default: { http: ["http://127.0.0.1:9545"] } } });
    expect(clients.chain.serializers?.transaction).toBeTypeOf("function");
    expect(clients.publicClient.chain.id).toBe(42431);
  });

  it("builds wallet clients for an account on the same chain", () => {
    const account = privateKeyToAccount("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
    const wallet = createTempoClients({
      rpcUrl: "https://rpc.tempo.xyz",
      chainId: TEMPO_MAINNET_CHAIN_ID,
      feeToken: USDC_E_ADDRESS,
    }).walletClientFor(account);
    expect(wallet.account.address).toBe(account.address);
    expect(wallet.chain.id).toBe(TEMPO_MAINNET_CHAIN_ID);
  });

  it("fails a chain call after timeoutMs (CHAIN_RPC_TIMEOUT_MS) when the node never answers", async () => {
    const silent = createServer(() => {}); // takes the request, never responds
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const rpcUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
      const { publicClient } = createTempoClients({ rpcUrl, chainId: 42431, feeToken: USDC_E_ADDRESS, timeoutMs: 300 });
      const started = Date.now();
      await expect(publicClient.getBlockNumber({ cacheTime: 0 })).rejects.toThrow(/took too long/);
      expect(Date.now() - started).toBeLessThan(5_000); // viem retries a timed-out call a few times, each bounded
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});
