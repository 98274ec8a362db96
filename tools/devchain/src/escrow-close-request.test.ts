import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEventLogs } from "viem";
import { channelEscrowAbi } from "@worldrouter/chain";
import {
  channelState,
  escrowRevertReason,
  openChannel,
  signVoucher,
  startLocalWorld,
  tokenBalance,
  writeEscrow,
  type LocalWorld,
} from "./test-support/local-world.js";

// The payer's way out: requestClose, a 900 s grace period for the payee to settle or close, then withdraw.
// Own chain because the last test moves chain time forward.

let local: LocalWorld;
beforeAll(async () => {
  local = await startLocalWorld({ payerCount: 1 });
});
afterAll(() => local?.stop());

const GRACE_PERIOD_SECONDS = 900;

describe("requestClose", () => {
  it("starts the grace period once; repeating it does not extend it", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    expect(await escrowRevertReason(local, local.payee, { functionName: "requestClose", args: [descriptor] })).toBe("NotPayer");

    const receipt = await writeEscrow(local, payer, { functionName: "requestClose", args: [descriptor] });
    const block = await local.clients.publicClient.getBlock({ blockNumber: receipt.blockNumber });
    const [requested] = parseEventLogs({ abi: channelEscrowAbi, eventName: "CloseRequested", logs: receipt.logs });
    expect(requested?.args.closeGraceEnd).toBe(block.timestamp + BigInt(GRACE_PERIOD_SECONDS));
    expect((await channelState(local, channelId)).closeRequestedAt).toBe(Number(block.timestamp));

    const repeat = await writeEscrow(local, payer, { functionName: "requestClose", args: [descriptor] });
    expect(parseEventLogs({ abi: channelEscrowAbi, eventName: "CloseRequested", logs: repeat.logs })).toHaveLength(0);
    expect((await channelState(local, channelId)).closeRequestedAt).toBe(Number(block.timestamp));
  });

  it("is cancelled by a topUp, even a zero one", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    await writeEscrow(local, payer, { functionName: "requestClose", args: [descriptor] });

    const receipt = await writeEscrow(local, payer, { functionName: "topUp", args: [descriptor, 0n] });

    expect(parseEventLogs({ abi: channelEscrowAbi, eventName: "CloseRequestCancelled", logs: receipt.logs })[0]?.args.channelId).toBe(
      channelId,
    );
    expect(parseEventLogs({ abi: channelEscrowAbi, eventName: "TopUp", logs: receipt.logs })[0]?.args).toMatchObject({
      additionalDeposit: 0n,
      newDeposit: 1_000_000n,
    });
    expect(await channelState(local, channelId)).toEqual({ settled: 0n, deposit: 1_000_000n, closeRequestedAt: 0 });
  });

  it("still lets the payee settle during the grace period", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    await writeEscrow(local, payer, { functionName: "requestClose", args: [descriptor] });
    await writeEscrow(local, local.payee, {
      functionName: "settle",
      args: [descriptor, 50_000n, await signVoucher(local, payer, channelId, 50_000n)],
    });
    expect(await channelState(local, channelId)).toMatchObject({ settled: 50_000n });
  });
});

describe("withdraw", () => {
  // Last in this file: it moves chain time forward, and expiring-nonce opens after it would look expired.
  it("refunds deposit − settled to the payer, only once the grace period has passed", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    const { descriptor: neverRequested } = await openChannel(local, { payer, deposit: 1_000n });
    await writeEscrow(local, local.payee, {
      functionName: "settle",
      args: [descriptor, 300_000n, await signVoucher(local, payer, channelId, 300_000n)],
    });
    await writeEscrow(local, payer, { functionName: "requestClose", args: [descriptor] });
    expect(await escrowRevertReason(local, payer, { functionName: "withdraw", args: [descriptor] })).toBe("CloseNotReady");

    await local.testClient.increaseTime({ seconds: GRACE_PERIOD_SECONDS - 5 });
    await local.testClient.mine({ blocks: 1 });
    expect(await escrowRevertReason(local, payer, { functionName: "withdraw", args: [descriptor] })).toBe("CloseNotReady");

    await local.testClient.increaseTime({ seconds: 5 });
    await local.testClient.mine({ blocks: 1 });
    expect(await escrowRevertReason(local, local.payee, { functionName: "withdraw", args: [descriptor] })).toBe("NotPayer");
    expect(await escrowRevertReason(local, payer, { functionName: "withdraw", args: [neverRequested] })).toBe("CloseNotReady");
    const payerBefore = await tokenBalance(local, payer.address);
    const receipt = await writeEscrow(local, payer, { functionName: "withdraw", args: [descriptor] });

    expect(parseEventLogs({ abi: channelEscrowAbi, eventName: "ChannelClosed", logs: receipt.logs })[0]?.args).toMatchObject({
      channelId,
      settledToPayee: 300_000n,
      refundedToPayer: 700_000n,
    });
    expect(await tokenBalance(local, payer.address)).toBe(payerBefore + 700_000n);
    expect(await channelState(local, channelId)).toEqual({ settled: 0n, deposit: 0n, closeRequestedAt: 0 });
  });
});
