import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFunctionData, getAddress, type Hex } from "viem";
import { prepareTransactionRequest, signTransaction } from "viem/actions";
import { Session } from "mppx/tempo";
import { channelEscrowAbi, tip20Abi } from "@worldrouter/chain";
import { escrowOpenKey, findEscrowOpens, primeEscrowForOpenTransaction, primedNonceHashStorageSlot } from "./escrow-open-priming.js";
import { ESCROW_CALL_GAS, ZERO_ADDRESS, randomSalt, startLocalWorld, type LocalWorld } from "./test-support/local-world.js";

let local: LocalWorld;
beforeAll(async () => {
  local = await startLocalWorld({ payerCount: 1 });
});
afterAll(() => local?.stop());

async function signedTransaction(calls: { to: Hex; data: Hex }[]): Promise<Hex> {
  const payer = local.payers[0]!;
  const wallet = local.clients.walletClientFor(payer);
  const prepared = await prepareTransactionRequest(wallet, { account: payer, calls, nonceKey: "expiring", gas: ESCROW_CALL_GAS });
  return signTransaction(wallet, prepared);
}

describe("primeEscrowForOpenTransaction", () => {
  it("writes the open tx's expiringNonceHash where the stand-in reads it, keyed by the open's arguments", async () => {
    const open = {
      payer: local.payers[0]!.address,
      payee: local.payee.address,
      operator: ZERO_ADDRESS,
      token: getAddress(local.world.token.address),
      salt: randomSalt(),
      authorizedSigner: ZERO_ADDRESS,
    };
    const data = encodeFunctionData({
      abi: channelEscrowAbi,
      functionName: "open",
      args: [open.payee, open.operator, open.token, 1_000n, open.salt, open.authorizedSigner],
    });
    const signed = await signedTransaction([{ to: local.world.escrow, data }]);

    const [primed] = await primeEscrowForOpenTransaction(local.anvil.rpcUrl, signed);

    expect(primed?.descriptor).toMatchObject(open);
    expect(primed?.deposit).toBe(1_000n);
    expect(primed?.channelId).toBe(
      Session.Precompile.Channel.computeId({ ...primed!.descriptor, chainId: local.world.chainId, escrow: local.world.escrow }),
    );
    const stored = await local.clients.publicClient.getStorageAt({
      address: local.world.escrow,
      slot: primedNonceHashStorageSlot(escrowOpenKey(open)),
    });
    expect(stored).toBe(primed?.descriptor.expiringNonceHash);
  });

  it("leaves transactions without an escrow open alone", async () => {
    const data = encodeFunctionData({ abi: tip20Abi, functionName: "transfer", args: [local.payee.address, 1n] });
    const signed = await signedTransaction([{ to: local.world.token.address, data }]);
    expect(findEscrowOpens(signed)).toEqual([]);
    expect(await primeEscrowForOpenTransaction(local.anvil.rpcUrl, signed)).toEqual([]);
  });
});
