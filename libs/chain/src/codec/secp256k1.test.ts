import { randomBytes } from "node:crypto";
import { secp256k1 as noble } from "@noble/curves/secp256k1";
import { describe, expect, it } from "vitest";
import {
  addressOfPrivateKey,
  keccak256,
  recoverAddress,
  SECP256K1_BACKEND,
  secp256k1Backends,
  signDigest,
  SignatureError,
} from "./secp256k1.js";

const privateKey = () => noble.utils.randomPrivateKey();

describe("secp256k1", () => {
  it("runs on the native libsecp256k1 build on this platform (linux-x64)", () => {
    expect(SECP256K1_BACKEND).toBe("native");
  });

  it("the native and the pure-JS fallback agree byte for byte: signatures (RFC 6979, low s), recovery, public keys", () => {
    const { native, noble: fallback } = secp256k1Backends;
    for (let i = 0; i < 50; i++) {
      const key = privateKey();
      const digest = new Uint8Array(randomBytes(32));
      const a = native!.sign(digest, key);
      const b = fallback.sign(digest, key);
      expect(Buffer.from(b.signature).toString("hex")).toBe(Buffer.from(a.signature).toString("hex"));
      expect(b.recid).toBe(a.recid);
      const recid = a.recid as 0 | 1;
      expect(Buffer.from(fallback.recover(a.signature, recid, digest))).toEqual(Buffer.from(native!.recover(a.signature, recid, digest)));
      expect(Buffer.from(fallback.publicKey(key))).toEqual(Buffer.from(native!.publicKey(key)));
    }
  });

  it("recovers the signer's address and refuses malleable (high-s) signatures", () => {
    const key = privateKey();
    const digest = keccak256(new TextEncoder().encode("pay me"));
    const signature = signDigest(digest, key);
    expect(recoverAddress(digest, signature)).toBe(addressOfPrivateKey(key));
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    expect(() => recoverAddress(digest, { r: signature.r, s: n - signature.s, yParity: (1 - signature.yParity) as 0 | 1 })).toThrow(
      SignatureError,
    );
  });
});
