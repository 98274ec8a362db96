import { decodeTempoTransaction, recoverSender, tempoChain, tip20Abi } from "@worldrouter/chain";
import { createClient, custom, encodeFunctionData, keccak256, maxUint256, numberToHex, recoverAddress, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { signTransaction } from "viem/actions";
import { Transaction } from "viem/tempo";
import { describe, expect, it } from "vitest";
import { FeeSponsor } from "./fee-sponsor.js";

const TOKEN: Hex = "0x20c000000000000000000000e9343992dac325b3";
const client = createClient({
  chain: tempoChain({ rpcUrl: "http://127.0.0.1:1", chainId: 4217, feeToken: TOKEN }),
  transport: custom({
    request: async ({ method }) => (method === "eth_chainId" ? numberToHex(4217) : Promise.reject(new Error(`unexpected ${method}`))),
  }),
});

describe("FeeSponsor", () => {
  it("co-signs as the configured account, paying gas in its token; the result is the broadcastable transaction and its hash", async () => {
    const feePayerKey = generatePrivateKey();
    const sponsor = new FeeSponsor(feePayerKey, TOKEN, 4);
    expect(sponsor.address).toBe(privateKeyToAccount(feePayerKey).address.toLowerCase());
    const sender = privateKeyToAccount(generatePrivateKey());
    const envelope = await signTransaction(client, {
      account: sender,
      chainId: 4217,
      calls: [{ to: TOKEN, data: encodeFunctionData({ abi: tip20Abi, functionName: "transfer", args: [TOKEN, 1n] }) }],
      gas: 600_000n,
      maxFeePerGas: 24_000_000_000n,
      maxPriorityFeePerGas: 0n,
      nonceKey: maxUint256,
      nonce: 0,
      validBefore: 2_000_000_000,
      feePayer: true,
    } as never);
    const transaction = decodeTempoTransaction(envelope);
    const { serialized, hash } = sponsor.coSign(transaction, recoverSender(transaction));
    expect(hash).toBe(keccak256(serialized));
    const broadcast = Transaction.deserialize(serialized) as {
      from: Hex;
      feeToken: Hex;
      feePayerSignature: { r: Hex; s: Hex; yParity: number };
    };
    expect(broadcast.from.toLowerCase()).toBe(sender.address.toLowerCase());
    expect(broadcast.feeToken.toLowerCase()).toBe(TOKEN);
    const ox = Transaction.z_TxEnvelopeTempo;
    const payload = ox.getFeePayerSignPayload(ox.deserialize(serialized as never), { sender: sender.address });
    expect((await recoverAddress({ hash: payload, signature: broadcast.feePayerSignature })).toLowerCase()).toBe(sponsor.address);
  });

  it("runs at most maxInFlight broadcasts at once, the rest in arrival order", async () => {
    const sponsor = new FeeSponsor(generatePrivateKey(), TOKEN, 3);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const releases: (() => void)[] = [];
    const broadcasts = Array.from({ length: 10 }, (_, i) =>
      sponsor.withBroadcastSlot(async () => {
        started.push(i);
        peak = Math.max(peak, ++running);
        await new Promise<void>((resolve) => releases.push(resolve));
        running--;
        return i;
      }),
    );
    while (started.length < 10) {
      await new Promise((resolve) => setImmediate(resolve));
      expect(running).toBeLessThanOrEqual(3);
      releases.shift()?.();
    }
    for (const release of releases) release();
    expect(await Promise.all(broadcasts)).toEqual([...Array(10).keys()]);
    expect(peak).toBe(3);
    expect(started).toEqual([...Array(10).keys()]);
  });

  it("frees the slot when a broadcast fails", async () => {
    const sponsor = new FeeSponsor(generatePrivateKey(), TOKEN, 1);
    await expect(sponsor.withBroadcastSlot(() => Promise.reject(new Error("refused")))).rejects.toThrow("refused");
    expect(await sponsor.withBroadcastSlot(async () => "next")).toBe("next");
  });
});
