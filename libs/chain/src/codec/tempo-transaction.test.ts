import { randomBytes, randomInt } from "node:crypto";
import {
  bytesToHex as viemBytesToHex,
  createClient,
  custom,
  fromRlp,
  keccak256 as viemKeccak256,
  maxUint256,
  numberToHex,
  toRlp,
  type Hex,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { signTransaction } from "viem/actions";
import { Transaction } from "viem/tempo";
import { describe, expect, it } from "vitest";
import { tempoChain } from "../clients.js";
import { signDigest, SignatureError } from "./secp256k1.js";
import {
  bytesToHex,
  decodeTempoTransaction,
  feePayerSignPayload,
  hexToBytes,
  recoverSender,
  senderSignPayload,
  serializeSponsoredTransaction,
  serializeTempoTransaction,
  TempoTransactionError,
  type TempoTransaction,
} from "./tempo-transaction.js";

const ox = Transaction.z_TxEnvelopeTempo;
const CHAIN_ID = 4217;
const FEE_TOKEN: Hex = "0x20c000000000000000000000e9343992dac325b3";
// viem's signTransaction action asks the transport for the chain id; nothing else goes over the wire.
const client = createClient({
  chain: tempoChain({ rpcUrl: "http://127.0.0.1:1", chainId: CHAIN_ID, feeToken: FEE_TOKEN }),
  transport: custom({
    request: async ({ method }) => (method === "eth_chainId" ? numberToHex(CHAIN_ID) : Promise.reject(new Error(`unexpected ${method}`))),
  }),
});

const randomHex = (bytes: number) => viemBytesToHex(randomBytes(bytes));
const randomAddress = () => randomHex(20);
const maybe = <T>(value: () => T): T | undefined => (randomInt(2) ? value() : undefined);

/** A random transaction request covering every field viem's tempo serializer writes. */
function randomRequest() {
  const maxFeePerGas = BigInt(randomInt(1, 2 ** 47));
  const now = Math.floor(Date.now() / 1000);
  const validAfter = maybe(() => now - randomInt(1, 1000));
  return {
    chainId: CHAIN_ID,
    calls: Array.from({ length: randomInt(1, 5) }, () => ({
      to: randomAddress(),
      ...(randomInt(3) === 0 ? { value: BigInt(randomInt(1, 2 ** 40)) } : {}),
      data: randomHex(randomInt(0, 300)),
    })),
    gas: BigInt(randomInt(21_000, 30_000_000)),
    maxFeePerGas,
    maxPriorityFeePerGas: BigInt(randomInt(0, Number(maxFeePerGas))),
    nonceKey: [maxUint256, BigInt(randomInt(1, 2 ** 40)), undefined][randomInt(3)],
    nonce: randomInt(0, 2 ** 31),
    ...(validAfter !== undefined ? { validAfter } : {}),
    ...maybe(() => ({ validBefore: now + randomInt(1, 900) })),
    ...maybe(() => ({
      accessList: Array.from({ length: randomInt(1, 3) }, () => ({
        address: randomAddress(),
        storageKeys: Array.from({ length: randomInt(0, 3) }, () => randomHex(32)),
      })),
    })),
  };
}

type Kind = "plain" | "sponsor-envelope" | "co-signed";

/** A serialized transaction signed with viem/tempo, like a wallet (plain), the mppx client (0x78) or a sponsor (co-signed). */
async function randomSignedTransaction(kind: Kind) {
  const sender = privateKeyToAccount(generatePrivateKey());
  const request = { ...randomRequest(), account: sender };
  if (kind === "plain")
    return { sender, serialized: await signTransaction(client, { ...request, ...maybe(() => ({ feeToken: randomAddress() })) } as never) };
  const envelope = await signTransaction(client, { ...request, feePayer: true } as never);
  if (kind === "sponsor-envelope") return { sender, serialized: envelope };
  const feePayer = privateKeyToAccount(generatePrivateKey());
  return {
    sender,
    serialized: await signTransaction(client, {
      ...Transaction.deserialize(envelope),
      account: feePayer,
      feePayer,
      feeToken: FEE_TOKEN,
    } as never),
  };
}

/** viem's view of the same fields, in our decoder's conventions (0 for absent integers, lowercase hex). */
function viemFields(serialized: Hex) {
  const tx = Transaction.deserialize(serialized) as Record<string, any>;
  return {
    chainId: tx.chainId,
    maxPriorityFeePerGas: tx.maxPriorityFeePerGas ?? 0n,
    maxFeePerGas: tx.maxFeePerGas ?? 0n,
    gas: tx.gas ?? 0n,
    calls: tx.calls.map((call: { to?: Hex; value?: bigint; data?: Hex }) => ({
      to: call.to?.toLowerCase(),
      value: call.value ?? 0n,
      data: (call.data ?? "0x").toLowerCase(),
    })),
    accessList: (tx.accessList ?? []).map((entry: { address: Hex; storageKeys: Hex[] }) => ({
      address: entry.address.toLowerCase(),
      storageKeys: entry.storageKeys.map((k) => k.toLowerCase()),
    })),
    nonceKey: tx.nonceKey ?? 0n,
    nonce: BigInt(tx.nonce),
    validBefore: tx.validBefore,
    validAfter: tx.validAfter,
    feeToken: tx.feeToken?.toLowerCase(),
    from: tx.from.toLowerCase(),
    signature: { r: tx.signature.signature.r, s: tx.signature.signature.s, yParity: tx.signature.signature.yParity },
    feePayerSignature: tx.feePayerSignature && {
      r: BigInt(tx.feePayerSignature.r),
      s: BigInt(tx.feePayerSignature.s),
      yParity: tx.feePayerSignature.yParity,
    },
  };
}

function ourFields(tx: TempoTransaction) {
  return {
    chainId: tx.chainId,
    maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
    maxFeePerGas: tx.maxFeePerGas,
    gas: tx.gas,
    calls: tx.calls,
    accessList: tx.accessList,
    nonceKey: tx.nonceKey,
    nonce: tx.nonce,
    validBefore: tx.validBefore,
    validAfter: tx.validAfter,
    feeToken: tx.feeToken,
    from: recoverSender(tx),
    signature: tx.signature,
    feePayerSignature: tx.feePayer.kind === "signed" ? tx.feePayer.signature : tx.feePayer.kind === "none" ? undefined : null,
  };
}

describe("decodeTempoTransaction against viem/tempo (ox TxEnvelopeTempo)", () => {
  for (const kind of ["plain", "sponsor-envelope", "co-signed"] as const) {
    it(`decodes 60 random ${kind} transactions to viem's fields, sender, signing payload and hash`, async () => {
      for (let i = 0; i < 60; i++) {
        const { sender, serialized } = await randomSignedTransaction(kind);
        const tx = decodeTempoTransaction(serialized);
        expect(ourFields(tx)).toEqual(viemFields(serialized));
        expect(recoverSender(tx)).toBe(sender.address.toLowerCase());
        const oxEnvelope = ox.deserialize(serialized as never);
        expect(bytesToHex(senderSignPayload(tx))).toBe(ox.getSignPayload(oxEnvelope as never));
        if (kind === "sponsor-envelope") {
          expect(tx.type).toBe(0x78);
          expect(tx.feePayer).toEqual({ kind: "sender", sender: sender.address.toLowerCase() });
        } else {
          expect(tx.type).toBe(0x76);
          expect(bytesToHex(serializeTempoTransaction(tx))).toBe(serialized);
          expect(viemKeccak256(serializeTempoTransaction(tx))).toBe(ox.hash(oxEnvelope as never));
        }
      }
    });
  }

  it("co-signs 60 random mppx-style 0x78 envelopes byte-identically to viem's signTransaction with the fee-payer account", async () => {
    for (let i = 0; i < 60; i++) {
      const { serialized } = await randomSignedTransaction("sponsor-envelope");
      const feePayerKey = generatePrivateKey();
      const feePayer = privateKeyToAccount(feePayerKey);
      const tx = decodeTempoTransaction(serialized);
      const sender = recoverSender(tx);
      const payload = feePayerSignPayload(tx, { sender, feeToken: FEE_TOKEN });
      expect(bytesToHex(payload)).toBe(
        ox.getFeePayerSignPayload(ox.from({ ...ox.deserialize(serialized as never), feeToken: FEE_TOKEN }), { sender }),
      );
      const ours = serializeSponsoredTransaction(tx, {
        feeToken: FEE_TOKEN,
        feePayerSignature: signDigest(payload, hexToBytes(feePayerKey)),
      });
      // What mppx broadcasts: viem's co-signed transaction, canonicalised by a deserialize/serialize round trip.
      const viaViem = await signTransaction(client, {
        ...Transaction.deserialize(serialized),
        account: feePayer,
        feePayer,
        feeToken: FEE_TOKEN,
      } as never);
      const canonical = await Transaction.serialize(Transaction.deserialize(viaViem) as never);
      expect(bytesToHex(ours)).toBe(canonical);
      expect((Transaction.deserialize(bytesToHex(ours)) as { from: Hex }).from.toLowerCase()).toBe(sender);
    }
  });
});

describe("decodeTempoTransaction rejects tampered input precisely", () => {
  /** The RLP fields of a serialized transaction, for building variants. */
  const fieldsOf = (serialized: Hex) => fromRlp(`0x${serialized.slice(4)}`, "hex") as (Hex | Hex[])[];
  const withFields = (type: "0x76" | "0x78", fields: unknown[]) => `${type}${toRlp(fields as Hex[]).slice(2)}` as Hex;

  it("wrong type byte, truncation, trailing bytes, bad hex", async () => {
    const { serialized } = await randomSignedTransaction("sponsor-envelope");
    expect(() => decodeTempoTransaction(`0x02${serialized.slice(4)}`)).toThrow(/not a Tempo transaction: type byte 0x02/);
    expect(() => decodeTempoTransaction(serialized.slice(0, -2) as Hex)).toThrow(/runs past the end/);
    expect(() => decodeTempoTransaction(`${serialized}00`)).toThrow(/1 trailing bytes/);
    expect(() => decodeTempoTransaction("0x78zz")).toThrow(/not an even-length 0x-prefixed hex string/);
    expect(() => decodeTempoTransaction("0x")).toThrow(/type byte missing/);
  });

  it("non-canonical RLP: integer with a leading zero, a short byte wrapped in a header, a long form for a short item", async () => {
    const { serialized } = await randomSignedTransaction("sponsor-envelope");
    const fields = fieldsOf(serialized);
    expect(() => decodeTempoTransaction(withFields("0x78", [fields[0], "0x0001", ...fields.slice(2)]))).toThrow(
      /maxPriorityFeePerGas has a leading zero byte/,
    );
    const minimal = withFields("0x76", [
      fields[0],
      "0x",
      "0x",
      "0x",
      [[randomAddress(), "0x", "0x"]],
      [],
      "0x",
      "0x",
      "0x",
      "0x",
      "0x",
      "0x00",
      [],
    ]);
    expect(decodeTempoTransaction(minimal).feePayer).toEqual({ kind: "requested" });
    expect(() => decodeTempoTransaction(fixListLength(minimal.replace(/00c0$/, "8100c0")))).toThrow(
      /single byte below 0x80 must not have a header/,
    );
    expect(() => decodeTempoTransaction("0x76f804c0c0c0c0")).toThrow(/long form for a 4-byte payload/);
  });

  it("field-count, fee payer slot and sender-signature errors", async () => {
    const { serialized } = await randomSignedTransaction("sponsor-envelope");
    const fields = fieldsOf(serialized);
    expect(() => decodeTempoTransaction(withFields("0x78", fields.slice(0, 12)))).toThrow(/12 fields \(expected 13 to 15\)/);
    expect(() => decodeTempoTransaction(withFields("0x76", fields))).toThrow(/only a 0x78 envelope carries a sender address/);
    expect(() => decodeTempoTransaction(withFields("0x78", [...fields.slice(0, 11), "0x00", ...fields.slice(12)]))).toThrow(
      /0x78 must carry the sender's address/,
    );
    const signature = fields[13] as Hex;
    expect(() => decodeTempoTransaction(withFields("0x78", [...fields.slice(0, 13), `${signature.slice(0, -2)}05`]))).toThrow(
      /malformed sender signature: v = 5/,
    );
    expect(() => decodeTempoTransaction(withFields("0x78", [...fields.slice(0, 13), `0x01${randomHex(129).slice(2)}`]))).toThrow(
      /unsupported sender signature type: P256/,
    );
    expect(() => decodeTempoTransaction(withFields("0x78", [...fields.slice(0, 13), `0x03${randomHex(85).slice(2)}`]))).toThrow(
      /unsupported sender signature type: keychain/,
    );
    expect(() => decodeTempoTransaction(withFields("0x78", [...fields.slice(0, 4), [], ...fields.slice(5)]))).toThrow(/no calls/);
    expect(() =>
      decodeTempoTransaction(withFields("0x78", [...fields.slice(0, 4), [[randomHex(19), "0x", "0x"]], ...fields.slice(5)])),
    ).toThrow(/call 0 to is 19 bytes/);
    expect(() => decodeTempoTransaction(withFields("0x78", fields.slice(0, 12)))).toThrow(TempoTransactionError);
  });

  it("a signature over different bytes recovers a different sender; high-s and out-of-range signatures are refused", async () => {
    const { sender, serialized } = await randomSignedTransaction("sponsor-envelope");
    const fields = fieldsOf(serialized);
    const otherGas = withFields("0x78", [...fields.slice(0, 3), numberToHex(123_456n), ...fields.slice(4)]);
    expect(recoverSender(decodeTempoTransaction(otherGas))).not.toBe(sender.address.toLowerCase());

    const tx = decodeTempoTransaction(serialized);
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const highS = withSignature(fields, { ...tx.signature!, s: n - tx.signature!.s, yParity: (1 - tx.signature!.yParity) as 0 | 1 });
    expect(() => recoverSender(decodeTempoTransaction(highS))).toThrow(SignatureError);
    expect(() => recoverSender(decodeTempoTransaction(highS))).toThrow(/high s/);
    expect(() => recoverSender(decodeTempoTransaction(withSignature(fields, { ...tx.signature!, r: 0n })))).toThrow(/r is out of range/);
    expect(() => recoverSender(decodeTempoTransaction(withSignature(fields, { ...tx.signature!, s: 0n })))).toThrow(/s is out of range/);
    // v as 0/1 instead of 27/28 decodes to the same signature; the canonical re-encoding uses 27/28.
    const raw = fields[13] as Hex;
    const v01 = withFields("0x78", [...fields.slice(0, 13), `${raw.slice(0, -2)}0${tx.signature!.yParity}`]);
    expect(recoverSender(decodeTempoTransaction(v01))).toBe(recoverSender(tx));
  });

  const withSignature = (fields: (Hex | Hex[])[], sig: { r: bigint; s: bigint; yParity: 0 | 1 }) =>
    withFields("0x78", [
      ...fields.slice(0, 13),
      `0x${sig.r.toString(16).padStart(64, "0")}${sig.s.toString(16).padStart(64, "0")}${(27 + sig.yParity).toString(16)}`,
    ]);
});

/** Rewrites the outer list header of `0x76 <list>` after an edit changed the payload length (short lists only). */
function fixListLength(serialized: string): Hex {
  const body = serialized.slice(4);
  const header = Number.parseInt(body.slice(0, 2), 16);
  const payload = header >= 0xf8 ? body.slice(2 + (header - 0xf7) * 2) : body.slice(2);
  const length = payload.length / 2;
  const newHeader = length <= 55 ? (0xc0 + length).toString(16) : `f8${length.toString(16).padStart(2, "0")}`;
  return `${serialized.slice(0, 4)}${newHeader}${payload}` as Hex;
}
