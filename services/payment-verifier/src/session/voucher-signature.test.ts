import { describe, expect, it } from "vitest";
import { Session } from "mppx/tempo";
import { keccak256, stringToHex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { SignatureError } from "@worldrouter/chain";
import { VoucherSigner } from "./voucher-signature.js";

const escrow = "0x4d50500000000000000000000000000000000000";
const chainId = 4217;

async function signed(cumulativeAmount: bigint, channelId = keccak256(stringToHex("channel"))) {
  const account = privateKeyToAccount(generatePrivateKey());
  const signature = await account.signTypedData({
    domain: Session.Precompile.Voucher.getVoucherDomain(escrow, chainId),
    types: Session.Precompile.Voucher.voucherTypes,
    primaryType: "Voucher",
    message: { channelId, cumulativeAmount },
  });
  return { account, signature, channelId };
}

describe("VoucherSigner", () => {
  it("recovers the signer of an mppx voucher, as mppx's verifier does", async () => {
    const signer = new VoucherSigner(escrow, chainId);
    for (const amount of [1n, 123_456_789n, (1n << 96n) - 1n]) {
      const { account, signature, channelId } = await signed(amount);
      expect(
        Session.Precompile.Voucher.verifyVoucher(escrow, chainId, { channelId, cumulativeAmount: amount, signature }, account.address),
      ).toBe(true);
      expect(signer.recover(channelId, amount, signature)).toBe(account.address.toLowerCase());
      // Another amount or channel recovers someone else.
      expect(signer.recover(channelId, amount + 1n, signature)).not.toBe(account.address.toLowerCase());
    }
  });

  it("binds the domain: another chain or escrow recovers someone else", async () => {
    const { account, signature, channelId } = await signed(5n);
    expect(new VoucherSigner(escrow, 1).recover(channelId, 5n, signature)).not.toBe(account.address.toLowerCase());
    expect(new VoucherSigner("0x0000000000000000000000000000000000000001", chainId).recover(channelId, 5n, signature)).not.toBe(
      account.address.toLowerCase(),
    );
  });

  it("refuses malformed and high-s signatures", async () => {
    const signer = new VoucherSigner(escrow, chainId);
    const { signature, channelId } = await signed(5n);
    expect(() => signer.recover(channelId, 5n, signature.slice(0, 100) as `0x${string}`)).toThrow(SignatureError);
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const s = BigInt(`0x${signature.slice(66, 130)}`);
    const v = Number.parseInt(signature.slice(130, 132), 16);
    const flipped =
      `${signature.slice(0, 66)}${(n - s).toString(16).padStart(64, "0")}${(v === 27 ? 28 : 27).toString(16)}` as `0x${string}`;
    expect(() => signer.recover(channelId, 5n, flipped)).toThrow(/high s/);
  });
});
