import { hexToBytes, keccak256, recoverAddress, SignatureError } from "@worldrouter/chain";
import { Session } from "mppx/tempo";
import { hashDomain } from "viem";

type Hex = `0x${string}`;

const VOUCHER_TYPEHASH = keccak256(Buffer.from("Voucher(bytes32 channelId,uint96 cumulativeAmount)", "utf8"));

/**
 * The signer of a session voucher: EIP-712 `Voucher(bytes32 channelId, uint96 cumulativeAmount)` under the escrow's
 * domain, with the domain separator and type hash computed once, so a voucher costs two small keccaks and ONE native
 * public-key recovery (viem's generic `recoverTypedDataAddress` costs ~30× more). Refuses high-s signatures.
 * Tested against mppx's `Voucher.verifyVoucher` (voucher-signature.test.ts).
 */
export class VoucherSigner {
  private readonly prefix: Uint8Array;

  constructor(escrow: Hex, chainId: number) {
    const domain = Session.Precompile.Voucher.getVoucherDomain(escrow, chainId);
    const separator = hexToBytes(
      hashDomain({ domain, types: { EIP712Domain: eip712DomainFields(domain) } } as unknown as Parameters<typeof hashDomain>[0]),
    );
    this.prefix = new Uint8Array(34);
    this.prefix.set([0x19, 0x01], 0);
    this.prefix.set(separator, 2);
  }

  digest(channelId: Hex, cumulativeAmount: bigint): Uint8Array {
    const struct = new Uint8Array(96);
    struct.set(VOUCHER_TYPEHASH, 0);
    struct.set(hexToBytes(channelId), 32);
    struct.set(Buffer.from(cumulativeAmount.toString(16).padStart(64, "0"), "hex"), 64);
    const message = new Uint8Array(66);
    message.set(this.prefix, 0);
    message.set(keccak256(struct), 34);
    return keccak256(message);
  }

  /** The lowercase address that signed the voucher; throws `SignatureError` for a malformed or non-canonical signature. */
  recover(channelId: Hex, cumulativeAmount: bigint, signature: Hex): Hex {
    const bytes = hexToBytes(signature);
    if (bytes.length !== 65) throw new SignatureError(`expected a 65-byte signature, got ${bytes.length} bytes`);
    const v = bytes[64]!;
    const yParity = v === 27 || v === 0 ? 0 : v === 28 || v === 1 ? 1 : undefined;
    if (yParity === undefined) throw new SignatureError(`signature v ${v} is invalid`);
    const r = BigInt(`0x${Buffer.from(bytes.subarray(0, 32)).toString("hex")}`);
    const s = BigInt(`0x${Buffer.from(bytes.subarray(32, 64)).toString("hex")}`);
    return recoverAddress(this.digest(channelId, cumulativeAmount), { r, s, yParity });
  }
}

function eip712DomainFields(domain: object) {
  const fields = [
    { name: "name", type: "string" },
    { name: "version", type: "string" },
    { name: "chainId", type: "uint256" },
    { name: "verifyingContract", type: "address" },
    { name: "salt", type: "bytes32" },
  ];
  return fields.filter((field) => (domain as Record<string, unknown>)[field.name] !== undefined);
}
