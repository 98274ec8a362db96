/**
 * Tempo transactions (type 0x76, and the 0x78 envelope a sender hands to a fee payer) decoded once, in the
 * field layout of ox's `TxEnvelopeTempo`, keeping the raw bytes of every field so the sender's signing payload,
 * the fee payer's signing payload and the co-signed envelope are built from slices instead of re-encoding.
 *
 *   0x76 || rlp([chainId, maxPriorityFeePerGas, maxFeePerGas, gas, calls, accessList, nonceKey, nonce,
 *                validBefore, validAfter, feeToken, feePayerSignatureOrSender, authorizationList,
 *                keyAuthorization?, signature?])
 *
 * `feePayerSignatureOrSender` is empty (no sponsor), 0x00 (a sponsor will sign), the sender's address (0x78
 * envelopes) or the fee payer's `[yParity, r, s]`. Under sponsorship the sender signs without `feeToken`.
 */
import {
  concatBytes,
  rlpBytes,
  rlpEncodeBytes,
  rlpEncodeList,
  rlpEncodeUint,
  rlpHeader,
  rlpItemAt,
  rlpListItems,
  RlpError,
  type RlpItem,
} from "./rlp.js";
import { bigintTo32Bytes, bytesToBigint, keccak256, recoverAddress, type Secp256k1Signature } from "./secp256k1.js";

type Hex = `0x${string}`;

const TEMPO_TRANSACTION_TYPE = 0x76;
const TEMPO_FEE_PAYER_ENVELOPE_TYPE = 0x78;

export interface TempoCall {
  /** Lowercase; undefined for a contract creation. */
  to: Hex | undefined;
  value: bigint;
  /** Lowercase calldata, `0x` when empty. */
  data: Hex;
}

export interface TempoAccessListEntry {
  address: Hex;
  storageKeys: Hex[];
}

export type TempoFeePayerField =
  /** Not sponsored: the sender pays (and signed over `feeToken`). */
  | { kind: "none" }
  /** Sponsored, fee payer signature still missing (the 0x00 marker). */
  | { kind: "requested" }
  /** 0x78 envelope: the sender's address, for the fee payer to sign over. */
  | { kind: "sender"; sender: Hex }
  | { kind: "signed"; signature: Secp256k1Signature };

export interface TempoTransaction {
  type: typeof TEMPO_TRANSACTION_TYPE | typeof TEMPO_FEE_PAYER_ENVELOPE_TYPE;
  chainId: number;
  /** 0 when absent, like the other integers. */
  maxPriorityFeePerGas: bigint;
  maxFeePerGas: bigint;
  gas: bigint;
  calls: TempoCall[];
  accessList: TempoAccessListEntry[];
  nonceKey: bigint;
  nonce: bigint;
  validBefore: number | undefined;
  validAfter: number | undefined;
  feeToken: Hex | undefined;
  feePayer: TempoFeePayerField;
  /** Carried through untouched (signing payloads and re-encodings include them); not decoded further. */
  hasAuthorizationList: boolean;
  hasKeyAuthorization: boolean;
  /** The sender's signature; undefined when unsigned. Only secp256k1 signatures are supported. */
  signature: Secp256k1Signature | undefined;
  readonly raw: RawFields;
}

interface RawFields {
  /** Fields 0–9 (chainId … validAfter), contiguous in the input. */
  head: Uint8Array;
  feeToken: Uint8Array;
  feePayer: Uint8Array;
  authorizationList: Uint8Array;
  keyAuthorization: Uint8Array | undefined;
}

export class TempoTransactionError extends Error {
  override readonly name = "TempoTransactionError";
}

const EMPTY_STRING = Uint8Array.of(0x80);
const SPONSOR_MARKER = Uint8Array.of(0x00);
const MAX_UINT_BYTES = 32;
const SIGNATURE_TYPES: Record<number, string> = { 1: "P256", 2: "WebAuthn", 3: "keychain", 4: "keychain (v2)" };

/** Decodes a serialized 0x76 transaction or 0x78 fee-payer envelope; canonical encodings only. */
export function decodeTempoTransaction(serialized: Hex | Uint8Array): TempoTransaction {
  const bytes = typeof serialized === "string" ? hexToBytes(serialized) : serialized;
  try {
    return decode(bytes);
  } catch (err) {
    if (err instanceof RlpError) throw new TempoTransactionError(`malformed transaction: ${err.message}`, { cause: err });
    throw err;
  }
}

function decode(bytes: Uint8Array): TempoTransaction {
  const type = bytes[0];
  if (type !== TEMPO_TRANSACTION_TYPE && type !== TEMPO_FEE_PAYER_ENVELOPE_TYPE) {
    throw new TempoTransactionError(
      `not a Tempo transaction: type byte ${type === undefined ? "missing" : `0x${type.toString(16).padStart(2, "0")}`} (expected 0x76 or 0x78)`,
    );
  }
  const list = rlpItemAt(bytes, 1, bytes.length);
  if (list.end !== bytes.length)
    throw new TempoTransactionError(`malformed transaction: ${bytes.length - list.end} trailing bytes after the RLP list`);
  const fields = rlpListItems(bytes, list);
  if (fields.length < 13 || fields.length > 15)
    throw new TempoTransactionError(`malformed transaction: ${fields.length} fields (expected 13 to 15)`);
  const field = (i: number) => fields[i]!;

  const keyAuthorizationItem = fields.length >= 14 && field(13).isList ? field(13) : undefined;
  const signatureItem = keyAuthorizationItem ? fields[14] : fields[13];
  if (fields.length === 15 && !keyAuthorizationItem)
    throw new TempoTransactionError("malformed transaction: 15 fields but field 13 is not a key authorization");
  const authorizationList = field(12);
  if (!authorizationList.isList) throw new TempoTransactionError("malformed transaction: authorizationList is not a list");

  const feePayer = decodeFeePayerField(bytes, field(11));
  if ((type === TEMPO_FEE_PAYER_ENVELOPE_TYPE) !== (feePayer.kind === "sender")) {
    throw new TempoTransactionError(
      type === TEMPO_FEE_PAYER_ENVELOPE_TYPE
        ? "malformed fee-payer envelope: 0x78 must carry the sender's address"
        : "malformed transaction: only a 0x78 envelope carries a sender address",
    );
  }
  const chainId = uint(bytes, field(0), "chainId", 6);
  if (chainId === 0n) throw new TempoTransactionError("invalid transaction: chainId is zero");
  const validBeforeItem = field(8);
  const validAfterItem = field(9);
  const transaction: TempoTransaction = {
    type,
    chainId: Number(chainId),
    maxPriorityFeePerGas: uint(bytes, field(1), "maxPriorityFeePerGas"),
    maxFeePerGas: uint(bytes, field(2), "maxFeePerGas"),
    gas: uint(bytes, field(3), "gas"),
    calls: decodeCalls(bytes, field(4)),
    accessList: decodeAccessList(bytes, field(5)),
    nonceKey: uint(bytes, field(6), "nonceKey"),
    nonce: uint(bytes, field(7), "nonce", 8),
    validBefore: isEmpty(validBeforeItem) ? undefined : Number(uint(bytes, validBeforeItem, "validBefore", 6)),
    validAfter: isEmpty(validAfterItem) ? undefined : Number(uint(bytes, validAfterItem, "validAfter", 6)),
    feeToken: optionalAddress(bytes, field(10), "feeToken"),
    feePayer,
    hasAuthorizationList: authorizationList.end - authorizationList.payloadStart > 0,
    hasKeyAuthorization: keyAuthorizationItem !== undefined,
    signature: signatureItem ? decodeSenderSignature(bytes, signatureItem) : undefined,
    raw: {
      head: bytes.subarray(field(0).start, field(9).end),
      feeToken: bytes.subarray(field(10).start, field(10).end),
      feePayer: bytes.subarray(field(11).start, field(11).end),
      authorizationList: bytes.subarray(authorizationList.start, authorizationList.end),
      keyAuthorization: keyAuthorizationItem && bytes.subarray(keyAuthorizationItem.start, keyAuthorizationItem.end),
    },
  };
  if (transaction.calls.length === 0) throw new TempoTransactionError("invalid transaction: no calls");
  if (transaction.validBefore !== undefined && transaction.validAfter !== undefined && transaction.validBefore <= transaction.validAfter) {
    throw new TempoTransactionError(
      `invalid transaction: validBefore (${transaction.validBefore}) must be after validAfter (${transaction.validAfter})`,
    );
  }
  if (transaction.maxPriorityFeePerGas > transaction.maxFeePerGas && transaction.maxFeePerGas !== 0n) {
    throw new TempoTransactionError("invalid transaction: maxPriorityFeePerGas exceeds maxFeePerGas");
  }
  return transaction;
}

/** Whether the sender signed for a fee payer (0x00 marker, 0x78 envelope or an already co-signed transaction). */
function isSponsored(transaction: TempoTransaction): boolean {
  return transaction.feePayer.kind !== "none";
}

/** keccak256 of what the sender signs (ox `TxEnvelopeTempo.getSignPayload`). */
export function senderSignPayload(transaction: TempoTransaction): Uint8Array {
  const { raw } = transaction;
  const sponsored = isSponsored(transaction);
  return keccak256(
    envelope(TEMPO_TRANSACTION_TYPE, [
      raw.head,
      sponsored ? EMPTY_STRING : raw.feeToken,
      sponsored ? SPONSOR_MARKER : EMPTY_STRING,
      raw.authorizationList,
      raw.keyAuthorization,
    ]),
  );
}

/** The sender, recovered from its signature (throws SignatureError for a bad or malleable signature). */
export function recoverSender(transaction: TempoTransaction): Hex {
  if (!transaction.signature) throw new TempoTransactionError("transaction is not signed by its sender");
  return recoverAddress(senderSignPayload(transaction), transaction.signature);
}

/** keccak256 of what the fee payer signs for `sender`, paying gas in `feeToken` (ox `getFeePayerSignPayload`). */
export function feePayerSignPayload(transaction: TempoTransaction, sponsorship: { sender: Hex; feeToken: Hex }): Uint8Array {
  const { raw } = transaction;
  return keccak256(
    envelope(TEMPO_FEE_PAYER_ENVELOPE_TYPE, [
      raw.head,
      rlpEncodeBytes(addressBytes(sponsorship.feeToken)),
      rlpEncodeBytes(addressBytes(sponsorship.sender)),
      raw.authorizationList,
      raw.keyAuthorization,
    ]),
  );
}

/**
 * The broadcastable 0x76 transaction: the sender's fields and signature with `feeToken` and the fee payer's
 * signature filled in. Canonical (v = 27/28 for the sender signature, as ox serializes it), so its keccak256
 * is the hash the node reports.
 */
export function serializeSponsoredTransaction(
  transaction: TempoTransaction,
  sponsorship: { feeToken: Hex; feePayerSignature: Secp256k1Signature },
): Uint8Array {
  if (!transaction.signature) throw new TempoTransactionError("transaction is not signed by its sender");
  const { raw } = transaction;
  return envelope(TEMPO_TRANSACTION_TYPE, [
    raw.head,
    rlpEncodeBytes(addressBytes(sponsorship.feeToken)),
    encodeFeePayerSignature(sponsorship.feePayerSignature),
    raw.authorizationList,
    raw.keyAuthorization,
    encodeSenderSignature(transaction.signature),
  ]);
}

/** A decoded 0x76 transaction encoded again canonically (sender signature v as 27/28); its keccak256 is the tx hash. */
export function serializeTempoTransaction(transaction: TempoTransaction): Uint8Array {
  if (transaction.type !== TEMPO_TRANSACTION_TYPE)
    throw new TempoTransactionError("a 0x78 fee-payer envelope is not a broadcastable transaction");
  const { raw } = transaction;
  return envelope(TEMPO_TRANSACTION_TYPE, [
    raw.head,
    raw.feeToken,
    raw.feePayer,
    raw.authorizationList,
    raw.keyAuthorization,
    transaction.signature && encodeSenderSignature(transaction.signature),
  ]);
}

export function hexToBytes(hex: string): Uint8Array {
  if (!/^0x(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new TempoTransactionError("not an even-length 0x-prefixed hex string");
  return Buffer.from(hex.slice(2), "hex");
}

export function bytesToHex(bytes: Uint8Array): Hex {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex")}`;
}

function envelope(type: number, parts: readonly (Uint8Array | undefined)[]): Uint8Array {
  const present = parts.filter((part): part is Uint8Array => part !== undefined);
  let length = 0;
  for (const part of present) length += part.length;
  return concatBytes([Uint8Array.of(type), rlpHeader(length, true), ...present]);
}

function encodeFeePayerSignature(signature: Secp256k1Signature): Uint8Array {
  return rlpEncodeList([
    signature.yParity === 1 ? Uint8Array.of(0x01) : EMPTY_STRING,
    rlpEncodeUint(signature.r),
    rlpEncodeUint(signature.s),
  ]);
}

function encodeSenderSignature(signature: Secp256k1Signature): Uint8Array {
  const out = new Uint8Array(67);
  out[0] = 0xb8;
  out[1] = 65;
  out.set(bigintTo32Bytes(signature.r), 2);
  out.set(bigintTo32Bytes(signature.s), 34);
  out[66] = 27 + signature.yParity;
  return out;
}

function decodeFeePayerField(bytes: Uint8Array, item: RlpItem): TempoFeePayerField {
  if (item.isList) {
    const parts = rlpListItems(bytes, item);
    if (parts.length !== 3)
      throw new TempoTransactionError(`malformed fee payer signature: ${parts.length} fields (expected yParity, r, s)`);
    const yParity = uint(bytes, parts[0]!, "fee payer yParity", 1);
    if (yParity > 1n) throw new TempoTransactionError(`malformed fee payer signature: yParity ${yParity}`);
    return {
      kind: "signed",
      signature: { yParity: Number(yParity) as 0 | 1, r: uint(bytes, parts[1]!, "fee payer r"), s: uint(bytes, parts[2]!, "fee payer s") },
    };
  }
  const payload = rlpBytes(bytes, item);
  if (payload.length === 0) return { kind: "none" };
  if (payload.length === 1 && payload[0] === 0) return { kind: "requested" };
  if (payload.length === 20) return { kind: "sender", sender: bytesToHex(payload) };
  throw new TempoTransactionError(`malformed transaction: fee payer field of ${payload.length} bytes`);
}

function decodeSenderSignature(bytes: Uint8Array, item: RlpItem): Secp256k1Signature {
  const payload = rlpBytes(bytes, item);
  if (payload.length !== 65) {
    const kind = SIGNATURE_TYPES[payload[0] ?? -1];
    throw new TempoTransactionError(
      kind
        ? `unsupported sender signature type: ${kind} (only secp256k1 is accepted)`
        : `malformed sender signature: ${payload.length} bytes`,
    );
  }
  const v = payload[64]!;
  if (v !== 0 && v !== 1 && v !== 27 && v !== 28) throw new TempoTransactionError(`malformed sender signature: v = ${v}`);
  return { r: bytesToBigint(payload.subarray(0, 32)), s: bytesToBigint(payload.subarray(32, 64)), yParity: (v % 27) as 0 | 1 };
}

function decodeCalls(bytes: Uint8Array, item: RlpItem): TempoCall[] {
  if (!item.isList) throw new TempoTransactionError("malformed transaction: calls is not a list");
  return rlpListItems(bytes, item).map((callItem, index) => {
    const parts = callItem.isList ? rlpListItems(bytes, callItem) : [];
    if (parts.length !== 3) throw new TempoTransactionError(`malformed call ${index}: expected [to, value, data]`);
    return {
      to: optionalAddress(bytes, parts[0]!, `call ${index} to`),
      value: uint(bytes, parts[1]!, `call ${index} value`),
      data: bytesToHex(rlpBytes(bytes, parts[2]!)),
    };
  });
}

function decodeAccessList(bytes: Uint8Array, item: RlpItem): TempoAccessListEntry[] {
  if (!item.isList) throw new TempoTransactionError("malformed transaction: accessList is not a list");
  return rlpListItems(bytes, item).map((entry, index) => {
    const parts = entry.isList ? rlpListItems(bytes, entry) : [];
    if (parts.length !== 2 || !parts[1]!.isList) throw new TempoTransactionError(`malformed access list entry ${index}`);
    const address = optionalAddress(bytes, parts[0]!, `access list entry ${index} address`);
    if (!address) throw new TempoTransactionError(`malformed access list entry ${index}: empty address`);
    const storageKeys = rlpListItems(bytes, parts[1]!).map((key) => {
      const value = rlpBytes(bytes, key);
      if (value.length !== 32)
        throw new TempoTransactionError(`malformed access list entry ${index}: storage key of ${value.length} bytes`);
      return bytesToHex(value);
    });
    return { address, storageKeys };
  });
}

function uint(bytes: Uint8Array, item: RlpItem, name: string, maxBytes = MAX_UINT_BYTES): bigint {
  const payload = rlpBytesNamed(bytes, item, name);
  if (payload.length > maxBytes)
    throw new TempoTransactionError(`malformed transaction: ${name} is ${payload.length} bytes long (at most ${maxBytes})`);
  if (payload[0] === 0) throw new TempoTransactionError(`malformed transaction: ${name} has a leading zero byte`);
  return bytesToBigint(payload);
}

function optionalAddress(bytes: Uint8Array, item: RlpItem, name: string): Hex | undefined {
  const payload = rlpBytesNamed(bytes, item, name);
  if (payload.length === 0) return undefined;
  if (payload.length !== 20)
    throw new TempoTransactionError(`malformed transaction: ${name} is ${payload.length} bytes (expected a 20-byte address)`);
  return bytesToHex(payload);
}

function rlpBytesNamed(bytes: Uint8Array, item: RlpItem, name: string): Uint8Array {
  if (item.isList) throw new TempoTransactionError(`malformed transaction: ${name} is a list`);
  return rlpBytes(bytes, item);
}

function isEmpty(item: RlpItem): boolean {
  return !item.isList && item.end - item.payloadStart === 0 && item.payloadStart !== item.start;
}

function addressBytes(address: Hex): Uint8Array {
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new TempoTransactionError(`not an address: ${address}`);
  return Buffer.from(address.slice(2), "hex");
}
