/**
 * secp256k1 on libsecp256k1 (npm `secp256k1`, native prebuilds): ~25× faster than @noble/curves for recovery.
 * Loaded through `secp256k1/bindings` so a missing native build fails loudly at start-up instead of silently
 * falling back to the package's pure-JS `elliptic` implementation.
 */
import { createRequire } from "node:module";
import { keccak_256 } from "@noble/hashes/sha3";

type Secp256k1 = typeof import("secp256k1");
const native = createRequire(import.meta.url)("secp256k1/bindings") as Secp256k1;

type Hex = `0x${string}`;

/** Curve order n and n/2: signatures with s > n/2 are malleable copies and refused (EIP-2). */
const CURVE_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_CURVE_ORDER = CURVE_ORDER >> 1n;

export interface Secp256k1Signature {
  r: bigint;
  s: bigint;
  yParity: 0 | 1;
}

export class SignatureError extends Error {
  override readonly name = "SignatureError";
}

export function keccak256(bytes: Uint8Array): Uint8Array {
  return keccak_256(bytes);
}

/** The address that signed `digest` (a 32-byte hash), lowercase. Refuses high-s and out-of-range values. */
export function recoverAddress(digest: Uint8Array, signature: Secp256k1Signature): Hex {
  const { r, s } = signature;
  if (r <= 0n || r >= CURVE_ORDER) throw new SignatureError("signature r is out of range");
  if (s <= 0n || s > HALF_CURVE_ORDER) throw new SignatureError(s > HALF_CURVE_ORDER && s < CURVE_ORDER ? "signature s is not canonical (high s)" : "signature s is out of range");
  const compact = new Uint8Array(64);
  compact.set(bigintTo32Bytes(r), 0);
  compact.set(bigintTo32Bytes(s), 32);
  let publicKey: Uint8Array;
  try {
    publicKey = native.ecdsaRecover(compact, signature.yParity, digest, false);
  } catch {
    throw new SignatureError("no public key recovers from this signature");
  }
  return addressOfPublicKey(publicKey);
}

/** Deterministic (RFC 6979), low-s signature of `digest`: the same bytes viem's local accounts produce. */
export function signDigest(digest: Uint8Array, privateKey: Uint8Array): Secp256k1Signature {
  const { signature, recid } = native.ecdsaSign(digest, privateKey);
  return { r: bytesToBigint(signature.subarray(0, 32)), s: bytesToBigint(signature.subarray(32, 64)), yParity: recid as 0 | 1 };
}

export function addressOfPrivateKey(privateKey: Uint8Array): Hex {
  return addressOfPublicKey(native.publicKeyCreate(privateKey, false));
}

function addressOfPublicKey(uncompressed: Uint8Array): Hex {
  return `0x${Buffer.from(keccak_256(uncompressed.subarray(1))).subarray(12).toString("hex")}`;
}

export function bigintTo32Bytes(value: bigint): Uint8Array {
  return Buffer.from(value.toString(16).padStart(64, "0"), "hex");
}

export function bytesToBigint(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex")}`);
}
