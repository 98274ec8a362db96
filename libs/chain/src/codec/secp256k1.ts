/**
 * secp256k1 on libsecp256k1 (npm `secp256k1`, native prebuilds for linux-x64, darwin-arm64, win32-x64): ~25×
 * faster than @noble/curves for recovery. Loaded through `secp256k1/bindings` (never the package's own slow
 * `elliptic` fallback). Where no prebuild exists (e.g. linux-arm64) @noble/curves does the same maths, slower:
 * `SECP256K1_BACKEND` says which one runs, so services can warn at start-up.
 */
import { createRequire } from "node:module";
import { secp256k1 as noble } from "@noble/curves/secp256k1";
import { keccak_256 } from "@noble/hashes/sha3";

interface Backend {
  recover(compact: Uint8Array, yParity: 0 | 1, digest: Uint8Array): Uint8Array;
  sign(digest: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number };
  publicKey(privateKey: Uint8Array): Uint8Array;
}

function loadNative(): Backend | undefined {
  try {
    const native = createRequire(import.meta.url)("secp256k1/bindings") as typeof import("secp256k1");
    return {
      recover: (compact, yParity, digest) => native.ecdsaRecover(compact, yParity, digest, false),
      sign: (digest, privateKey) => native.ecdsaSign(digest, privateKey),
      publicKey: (privateKey) => native.publicKeyCreate(privateKey, false),
    };
  } catch {
    return undefined;
  }
}

const nobleBackend: Backend = {
  recover: (compact, yParity, digest) =>
    noble.Signature.fromCompact(compact).addRecoveryBit(yParity).recoverPublicKey(digest).toRawBytes(false),
  sign: (digest, privateKey) => {
    const signature = noble.sign(digest, privateKey, { lowS: true });
    return { signature: signature.toCompactRawBytes(), recid: signature.recovery };
  },
  publicKey: (privateKey) => noble.getPublicKey(privateKey, false),
};

const nativeBackend = loadNative();
const backend: Backend = nativeBackend ?? nobleBackend;
/** Which implementation runs here: `native` (libsecp256k1) or `noble` (pure JS, ~25× slower recovery). */
export const SECP256K1_BACKEND: "native" | "noble" = nativeBackend ? "native" : "noble";
/** Both implementations, for the test that they agree byte for byte. */
export const secp256k1Backends = { native: nativeBackend, noble: nobleBackend };

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
  if (s <= 0n || s > HALF_CURVE_ORDER)
    throw new SignatureError(
      s > HALF_CURVE_ORDER && s < CURVE_ORDER ? "signature s is not canonical (high s)" : "signature s is out of range",
    );
  const compact = new Uint8Array(64);
  compact.set(bigintTo32Bytes(r), 0);
  compact.set(bigintTo32Bytes(s), 32);
  let publicKey: Uint8Array;
  try {
    publicKey = backend.recover(compact, signature.yParity, digest);
  } catch {
    throw new SignatureError("no public key recovers from this signature");
  }
  return addressOfPublicKey(publicKey);
}

/** Deterministic (RFC 6979), low-s signature of `digest`: the same bytes viem's local accounts produce. */
export function signDigest(digest: Uint8Array, privateKey: Uint8Array): Secp256k1Signature {
  const { signature, recid } = backend.sign(digest, privateKey);
  return { r: bytesToBigint(signature.subarray(0, 32)), s: bytesToBigint(signature.subarray(32, 64)), yParity: recid as 0 | 1 };
}

export function addressOfPrivateKey(privateKey: Uint8Array): Hex {
  return addressOfPublicKey(backend.publicKey(privateKey));
}

function addressOfPublicKey(uncompressed: Uint8Array): Hex {
  return `0x${Buffer.from(keccak_256(uncompressed.subarray(1)))
    .subarray(12)
    .toString("hex")}`;
}

export function bigintTo32Bytes(value: bigint): Uint8Array {
  return Buffer.from(value.toString(16).padStart(64, "0"), "hex");
}

export function bytesToBigint(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex")}`);
}
