/**
 * Canonical-only RLP: the decoder refuses every encoding a node would normalise away (a single byte below 0x80
 * wrapped in a header, long forms for short payloads, leading zeros in lengths), so the raw bytes of a decoded
 * item can be reused as-is in a re-encoding and hashes over them match the node's.
 */

export class RlpError extends Error {
  override readonly name = "RlpError";
}

/** Where one item sits in a buffer. */
export interface RlpItem {
  /** First header byte. */
  readonly start: number;
  /** First payload byte (equals `start` for a single byte below 0x80). */
  readonly payloadStart: number;
  /** One past the last byte. */
  readonly end: number;
  readonly isList: boolean;
}

/** The item starting at `offset`, which must end at or before `limit`. */
export function rlpItemAt(bytes: Uint8Array, offset: number, limit: number): RlpItem {
  if (offset >= limit) throw new RlpError(`RLP item expected at byte ${offset}, but the input ends there`);
  const prefix = bytes[offset]!;
  if (prefix < 0x80) return { start: offset, payloadStart: offset, end: offset + 1, isList: false };
  const isList = prefix >= 0xc0;
  const base = isList ? 0xc0 : 0x80;
  let payloadStart: number;
  let length: number;
  if (prefix - base <= 55) {
    payloadStart = offset + 1;
    length = prefix - base;
    if (!isList && length === 1 && payloadStart < limit && bytes[payloadStart]! < 0x80) {
      throw new RlpError(`non-canonical RLP at byte ${offset}: a single byte below 0x80 must not have a header`);
    }
  } else {
    const lengthOfLength = prefix - base - 55;
    payloadStart = offset + 1 + lengthOfLength;
    if (payloadStart > limit) throw new RlpError(`RLP length at byte ${offset} runs past the end of the input`);
    if (bytes[offset + 1] === 0) throw new RlpError(`non-canonical RLP at byte ${offset}: length with a leading zero`);
    if (lengthOfLength > 4) throw new RlpError(`RLP item at byte ${offset} is impossibly long`);
    length = 0;
    for (let i = offset + 1; i < payloadStart; i++) length = length * 256 + bytes[i]!;
    if (length <= 55) throw new RlpError(`non-canonical RLP at byte ${offset}: long form for a ${length}-byte payload`);
  }
  const end = payloadStart + length;
  if (end > limit) throw new RlpError(`RLP item at byte ${offset} (${length} bytes) runs past the end of its container`);
  return { start: offset, payloadStart, end, isList };
}

/** The items of a list, which must fill it exactly. */
export function rlpListItems(bytes: Uint8Array, list: RlpItem): RlpItem[] {
  if (!list.isList) throw new RlpError(`expected an RLP list at byte ${list.start}`);
  const items: RlpItem[] = [];
  for (let offset = list.payloadStart; offset < list.end; ) {
    const item = rlpItemAt(bytes, offset, list.end);
    items.push(item);
    offset = item.end;
  }
  return items;
}

/** The payload of a byte-string item. */
export function rlpBytes(bytes: Uint8Array, item: RlpItem): Uint8Array {
  if (item.isList) throw new RlpError(`expected an RLP byte string at byte ${item.start}, got a list`);
  return bytes.subarray(item.payloadStart, item.end);
}

/** Header of a byte string or list whose payload is `length` bytes long. */
export function rlpHeader(length: number, isList: boolean): Uint8Array {
  const base = isList ? 0xc0 : 0x80;
  if (length <= 55) return Uint8Array.of(base + length);
  const lengthBytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) lengthBytes.unshift(rest % 256);
  return Uint8Array.of(base + 55 + lengthBytes.length, ...lengthBytes);
}

/** A byte string as an RLP item. */
export function rlpEncodeBytes(payload: Uint8Array): Uint8Array {
  if (payload.length === 1 && payload[0]! < 0x80) return payload.slice();
  return concatBytes([rlpHeader(payload.length, false), payload]);
}

/** An unsigned integer as an RLP item (big-endian, no leading zeros; zero is the empty string). */
export function rlpEncodeUint(value: bigint): Uint8Array {
  return rlpEncodeBytes(uintToBytes(value));
}

/** A list of already-encoded items. */
export function rlpEncodeList(items: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const item of items) length += item.length;
  return concatBytes([rlpHeader(length, true), ...items]);
}

function uintToBytes(value: bigint): Uint8Array {
  if (value < 0n) throw new RangeError("cannot encode a negative integer");
  if (value === 0n) return new Uint8Array(0);
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, "hex");
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
