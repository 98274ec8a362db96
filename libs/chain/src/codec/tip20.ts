/**
 * TIP-20 transfer calldata and Transfer/TransferWithMemo logs, decoded straight from hex words (the exact
 * encodings `tip20Abi` produces; tested against viem's ABI coder).
 */
import type { RpcLog } from "../rpc/chain-rpc-client.js";
import { keccak256 } from "./secp256k1.js";

type Hex = `0x${string}`;

const selectorOf = (signature: string) =>
  Buffer.from(keccak256(Buffer.from(signature)))
    .subarray(0, 4)
    .toString("hex");
const topicOf = (signature: string) => `0x${Buffer.from(keccak256(Buffer.from(signature))).toString("hex")}` as Hex;

export const TIP20_TRANSFER_SELECTOR: Hex = `0x${selectorOf("transfer(address,uint256)")}`;
export const TIP20_TRANSFER_WITH_MEMO_SELECTOR: Hex = `0x${selectorOf("transferWithMemo(address,uint256,bytes32)")}`;
export const TIP20_TRANSFER_TOPIC = topicOf("Transfer(address,address,uint256)");
export const TIP20_TRANSFER_WITH_MEMO_TOPIC = topicOf("TransferWithMemo(address,address,uint256,bytes32)");

export interface Tip20TransferCall {
  to: Hex;
  amount: bigint;
  /** Only for `transferWithMemo`. */
  memo: Hex | undefined;
}

/** `transfer(to, amount)` or `transferWithMemo(to, amount, memo)` calldata in its canonical ABI encoding, else undefined. */
export function decodeTip20TransferCall(data: Hex): Tip20TransferCall | undefined {
  const hex = data.toLowerCase();
  const selector = hex.slice(0, 10);
  const withMemo = selector === TIP20_TRANSFER_WITH_MEMO_SELECTOR;
  if (!withMemo && selector !== TIP20_TRANSFER_SELECTOR) return undefined;
  if (hex.length !== 10 + 64 * (withMemo ? 3 : 2) || !isHexDigits(hex, 10)) return undefined;
  const to = addressWord(hex.slice(10, 74));
  if (!to) return undefined;
  return { to, amount: BigInt(`0x${hex.slice(74, 138)}`), memo: withMemo ? `0x${hex.slice(138, 202)}` : undefined };
}

export interface Tip20TransferLog {
  token: Hex;
  from: Hex;
  to: Hex;
  amount: bigint;
  /** Only for `TransferWithMemo`. */
  memo: Hex | undefined;
}

/** A TIP-20 `Transfer` or `TransferWithMemo` log (lowercase addresses), else undefined. */
export function decodeTip20TransferLog(log: RpcLog): Tip20TransferLog | undefined {
  const topic = log.topics[0]?.toLowerCase();
  const withMemo = topic === TIP20_TRANSFER_WITH_MEMO_TOPIC;
  if (!withMemo && topic !== TIP20_TRANSFER_TOPIC) return undefined;
  if (log.topics.length !== (withMemo ? 4 : 3) || log.data.length !== 66 || !isHexDigits(log.data, 2)) return undefined;
  const from = addressWord(log.topics[1]!.slice(2).toLowerCase());
  const to = addressWord(log.topics[2]!.slice(2).toLowerCase());
  if (!from || !to) return undefined;
  return {
    token: log.address.toLowerCase() as Hex,
    from,
    to,
    amount: BigInt(log.data),
    memo: withMemo ? (log.topics[3]!.toLowerCase() as Hex) : undefined,
  };
}

/** A left-padded 32-byte address word (64 lowercase hex digits), else undefined. */
function addressWord(word: string): Hex | undefined {
  if (word.length !== 64 || !word.startsWith("000000000000000000000000") || !isHexDigits(word, 0)) return undefined;
  return `0x${word.slice(24)}`;
}

function isHexDigits(value: string, from: number): boolean {
  return /^[0-9a-fA-F]*$/.test(from === 0 ? value : value.slice(from));
}
