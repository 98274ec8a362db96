import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hexToSignature, parseEventLogs, serializeSignature, type Hex } from "viem";
import { Session } from "mppx/tempo";
import { channelEscrowAbi } from "@worldrouter/chain";
import {
  ZERO_ADDRESS,
  channelState,
  escrowRevertReason,
  openChannel,
  randomSalt,
  signVoucher,
  startLocalWorld,
  tokenBalance,
  writeEscrow,
  type LocalWorld,
  type MinedReceipt,
} from "./test-support/local-world.js";

// Contract tests for the TIP-1034 escrow stand-in on a real local chain (own anvil per file).
// Vouchers are signed with mppx's helper, so every passing settle also proves mppx interop.

let local: LocalWorld;
beforeAll(async () => {
  local = await startLocalWorld({ payerCount: 2 });
});
afterAll(() => local?.stop());

const SECP256K1_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

function eventsOf<const name extends "ChannelOpened" | "Settled" | "TopUp" | "ChannelClosed">(receipt: MinedReceipt, eventName: name) {
  return parseEventLogs({ abi: channelEscrowAbi, eventName, logs: receipt.logs });
}

describe("open", () => {
  it("pulls the deposit and records the channel under the id mppx computes", async () => {
    const payer = local.payers[0]!;
    const payerBefore = await tokenBalance(local, payer.address);
    const escrowBefore = await tokenBalance(local, local.world.escrow);

    const { channelId, descriptor, receipt } = await openChannel(local, { payer, deposit: 1_000_000n });

    expect(eventsOf(receipt, "ChannelOpened")[0]?.args).toMatchObject({
      channelId,
      payer: payer.address,
      payee: local.payee.address,
      deposit: 1_000_000n,
      salt: descriptor.salt,
      expiringNonceHash: descriptor.expiringNonceHash,
    });
    expect(channelId).toBe(
      Session.Precompile.Channel.computeId({ ...descriptor, chainId: local.world.chainId, escrow: local.world.escrow }),
    );
    expect(await channelState(local, channelId)).toEqual({ settled: 0n, deposit: 1_000_000n, closeRequestedAt: 0 });
    const channel = await local.clients.publicClient.readContract({
      address: local.world.escrow,
      abi: channelEscrowAbi,
      functionName: "getChannel",
      args: [descriptor],
    });
    expect(channel.state.deposit).toBe(1_000_000n);
    expect(await tokenBalance(local, payer.address)).toBe(payerBefore - 1_000_000n);
    expect(await tokenBalance(local, local.world.escrow)).toBe(escrowBefore + 1_000_000n);
  });

  it("rejects a zero deposit and a zero payee", async () => {
    const payer = local.payers[0]!;
    const token = local.world.token.address;
    expect(
      await escrowRevertReason(local, payer, {
        functionName: "open",
        args: [local.payee.address, ZERO_ADDRESS, token, 0n, randomSalt(), ZERO_ADDRESS],
      }),
    ).toBe("ZeroDeposit");
    expect(
      await escrowRevertReason(local, payer, {
        functionName: "open",
        args: [ZERO_ADDRESS, ZERO_ADDRESS, token, 1n, randomSalt(), ZERO_ADDRESS],
      }),
    ).toBe("InvalidPayee");
  });
});

describe("settle", () => {
  it("pays the payee each voucher's increase over what is already settled", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    const payeeBefore = await tokenBalance(local, local.payee.address);

    const first = await writeEscrow(local, local.payee, {
      functionName: "settle",
      args: [descriptor, 300_000n, await signVoucher(local, payer, channelId, 300_000n)],
    });
    const second = await writeEscrow(local, local.payee, {
      functionName: "settle",
      args: [descriptor, 500_000n, await signVoucher(local, payer, channelId, 500_000n)],
    });

    expect(eventsOf(first, "Settled")[0]?.args).toMatchObject({
      channelId,
      cumulativeAmount: 300_000n,
      deltaPaid: 300_000n,
      newSettled: 300_000n,
    });
    expect(eventsOf(second, "Settled")[0]?.args).toMatchObject({
      channelId,
      cumulativeAmount: 500_000n,
      deltaPaid: 200_000n,
      newSettled: 500_000n,
    });
    expect(await tokenBalance(local, local.payee.address)).toBe(payeeBefore + 500_000n);
    expect(await channelState(local, channelId)).toMatchObject({ settled: 500_000n, deposit: 1_000_000n });
  });

  it("rejects settling the same voucher twice, or a smaller one", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    const voucher = await signVoucher(local, payer, channelId, 400_000n);
    await writeEscrow(local, local.payee, { functionName: "settle", args: [descriptor, 400_000n, voucher] });

    expect(await escrowRevertReason(local, local.payee, { functionName: "settle", args: [descriptor, 400_000n, voucher] })).toBe(
      "AmountNotIncreasing",
    );
    const smaller = await signVoucher(local, payer, channelId, 100_000n);
    expect(await escrowRevertReason(local, local.payee, { functionName: "settle", args: [descriptor, 100_000n, smaller] })).toBe(
      "AmountNotIncreasing",
    );
  });

  it("rejects a voucher signed by anyone but the payer", async () => {
    const [payer, stranger] = [local.payers[0]!, local.payers[1]!];
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    const forged = await signVoucher(local, stranger, channelId, 100_000n);
    expect(await escrowRevertReason(local, local.payee, { functionName: "settle", args: [descriptor, 100_000n, forged] })).toBe(
      "InvalidSignature",
    );
  });

  it("rejects a voucher for a different amount than it signs, and a high-s copy of a valid signature", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    const signature = await signVoucher(local, payer, channelId, 100_000n);
    expect(await escrowRevertReason(local, local.payee, { functionName: "settle", args: [descriptor, 200_000n, signature] })).toBe(
      "InvalidSignature",
    );

    const { r, s, yParity } = hexToSignature(signature);
    const highS: Hex = serializeSignature({
      r,
      s: `0x${(SECP256K1_ORDER - BigInt(s)).toString(16).padStart(64, "0")}`,
      yParity: yParity === 0 ? 1 : 0,
    });
    expect(await escrowRevertReason(local, local.payee, { functionName: "settle", args: [descriptor, 100_000n, highS] })).toBe(
      "InvalidSignature",
    );
  });

  it("rejects a cumulative amount above the deposit", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    const tooMuch = await signVoucher(local, payer, channelId, 1_000_001n);
    expect(await escrowRevertReason(local, local.payee, { functionName: "settle", args: [descriptor, 1_000_001n, tooMuch] })).toBe(
      "AmountExceedsDeposit",
    );
  });

  it("lets only the payee or the descriptor's operator settle", async () => {
    const [payer, operator] = [local.payers[0]!, local.payers[1]!];
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n, operator: operator.address });
    const voucher = await signVoucher(local, payer, channelId, 100_000n);
    expect(await escrowRevertReason(local, payer, { functionName: "settle", args: [descriptor, 100_000n, voucher] })).toBe(
      "NotPayeeOrOperator",
    );

    const payeeBefore = await tokenBalance(local, local.payee.address);
    await writeEscrow(local, operator, { functionName: "settle", args: [descriptor, 100_000n, voucher] });
    expect(await tokenBalance(local, local.payee.address)).toBe(payeeBefore + 100_000n);
  });

  it("accepts vouchers from the authorized signer instead of the payer when one is set", async () => {
    const [payer, signer] = [local.payers[0]!, local.payers[1]!];
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n, authorizedSigner: signer.address });
    const byPayer = await signVoucher(local, payer, channelId, 100_000n);
    expect(await escrowRevertReason(local, local.payee, { functionName: "settle", args: [descriptor, 100_000n, byPayer] })).toBe(
      "InvalidSignature",
    );
    await writeEscrow(local, local.payee, {
      functionName: "settle",
      args: [descriptor, 100_000n, await signVoucher(local, signer, channelId, 100_000n)],
    });
    expect(await channelState(local, channelId)).toMatchObject({ settled: 100_000n });
  });
});

describe("topUp", () => {
  it("adds to the deposit, for the payer only", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    expect(await escrowRevertReason(local, local.payee, { functionName: "topUp", args: [descriptor, 1n] })).toBe("NotPayer");

    const payerBefore = await tokenBalance(local, payer.address);
    const receipt = await writeEscrow(local, payer, { functionName: "topUp", args: [descriptor, 250_000n] });
    expect(eventsOf(receipt, "TopUp")[0]?.args).toMatchObject({ channelId, additionalDeposit: 250_000n, newDeposit: 1_250_000n });
    expect(await channelState(local, channelId)).toMatchObject({ deposit: 1_250_000n });
    expect(await tokenBalance(local, payer.address)).toBe(payerBefore - 250_000n);
  });
});

describe("close", () => {
  it("pays the payee capture − settled, refunds the payer the rest and deletes the channel", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    await writeEscrow(local, local.payee, {
      functionName: "settle",
      args: [descriptor, 100_000n, await signVoucher(local, payer, channelId, 100_000n)],
    });
    const [payerBefore, payeeBefore] = [await tokenBalance(local, payer.address), await tokenBalance(local, local.payee.address)];

    // The voucher allows 400k but the payee only consumed 300k: it captures what was spent, not the maximum.
    const voucher = await signVoucher(local, payer, channelId, 400_000n);
    const receipt = await writeEscrow(local, local.payee, { functionName: "close", args: [descriptor, 400_000n, 300_000n, voucher] });

    expect(eventsOf(receipt, "ChannelClosed")[0]?.args).toMatchObject({ channelId, settledToPayee: 300_000n, refundedToPayer: 700_000n });
    expect(await tokenBalance(local, local.payee.address)).toBe(payeeBefore + 200_000n);
    expect(await tokenBalance(local, payer.address)).toBe(payerBefore + 700_000n);
    expect(await channelState(local, channelId)).toEqual({ settled: 0n, deposit: 0n, closeRequestedAt: 0 });
    expect(await escrowRevertReason(local, local.payee, { functionName: "settle", args: [descriptor, 400_000n, voucher] })).toBe(
      "ChannelNotFound",
    );
  });

  it("needs no voucher when it captures only what is already settled", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    await writeEscrow(local, local.payee, {
      functionName: "settle",
      args: [descriptor, 100_000n, await signVoucher(local, payer, channelId, 100_000n)],
    });
    const receipt = await writeEscrow(local, local.payee, { functionName: "close", args: [descriptor, 100_000n, 100_000n, "0x"] });
    expect(eventsOf(receipt, "ChannelClosed")[0]?.args).toMatchObject({ settledToPayee: 100_000n, refundedToPayer: 900_000n });
  });

  it("rejects a capture below the settled amount or above the voucher", async () => {
    const payer = local.payers[0]!;
    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 1_000_000n });
    await writeEscrow(local, local.payee, {
      functionName: "settle",
      args: [descriptor, 200_000n, await signVoucher(local, payer, channelId, 200_000n)],
    });
    const voucher = await signVoucher(local, payer, channelId, 300_000n);
    expect(await escrowRevertReason(local, local.payee, { functionName: "close", args: [descriptor, 300_000n, 100_000n, voucher] })).toBe(
      "CaptureAmountInvalid",
    );
    expect(await escrowRevertReason(local, local.payee, { functionName: "close", args: [descriptor, 300_000n, 400_000n, voucher] })).toBe(
      "CaptureAmountInvalid",
    );
    expect(await escrowRevertReason(local, payer, { functionName: "close", args: [descriptor, 300_000n, 300_000n, voucher] })).toBe(
      "NotPayeeOrOperator",
    );
  });
});

describe("conservation", () => {
  it("moves USDC.e only between payer, escrow and payee over a channel's life", async () => {
    const payer = local.payers[1]!;
    const parties = [payer.address, local.payee.address, local.world.escrow];
    const total = async () => (await Promise.all(parties.map((a) => tokenBalance(local, a)))).reduce((sum, b) => sum + b, 0n);
    const [totalBefore, escrowBefore, payerBefore] = [
      await total(),
      await tokenBalance(local, local.world.escrow),
      await tokenBalance(local, payer.address),
    ];

    const { channelId, descriptor } = await openChannel(local, { payer, deposit: 2_000_000n, salt: randomSalt() });
    await writeEscrow(local, local.payee, {
      functionName: "settle",
      args: [descriptor, 700_000n, await signVoucher(local, payer, channelId, 700_000n)],
    });
    await writeEscrow(local, payer, { functionName: "topUp", args: [descriptor, 500_000n] });
    expect(await total()).toBe(totalBefore);
    await writeEscrow(local, local.payee, {
      functionName: "close",
      args: [descriptor, 2_100_000n, 1_900_000n, await signVoucher(local, payer, channelId, 2_100_000n)],
    });

    expect(await total()).toBe(totalBefore);
    expect(await tokenBalance(local, local.world.escrow)).toBe(escrowBefore);
    expect(await tokenBalance(local, payer.address)).toBe(payerBefore - 1_900_000n);
  });
});
