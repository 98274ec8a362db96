import { randomBytes, randomInt } from "node:crypto";
import { bytesToHex, encodeAbiParameters, encodeEventTopics, encodeFunctionData, type Hex } from "viem";
import { describe, expect, it } from "vitest";
import { tip20Abi } from "../abis.js";
import { decodeTip20TransferCall, decodeTip20TransferLog, TIP20_TRANSFER_TOPIC, TIP20_TRANSFER_WITH_MEMO_TOPIC } from "./tip20.js";

const address = () => bytesToHex(randomBytes(20));
const amount = () => BigInt(`0x${randomBytes(randomInt(1, 33)).toString("hex")}`);

describe("TIP-20 transfer calldata", () => {
  it("decodes what viem's ABI coder encodes", () => {
    for (let i = 0; i < 50; i++) {
      const [to, value, memo] = [address(), amount(), bytesToHex(randomBytes(32))];
      expect(
        decodeTip20TransferCall(encodeFunctionData({ abi: tip20Abi, functionName: "transferWithMemo", args: [to, value, memo] })),
      ).toEqual({ to, amount: value, memo });
      expect(decodeTip20TransferCall(encodeFunctionData({ abi: tip20Abi, functionName: "transfer", args: [to, value] }))).toEqual({
        to,
        amount: value,
        memo: undefined,
      });
    }
  });

  it("refuses other functions and non-canonical encodings", () => {
    const data = encodeFunctionData({
      abi: tip20Abi,
      functionName: "transferWithMemo",
      args: [address(), 5n, bytesToHex(randomBytes(32))],
    });
    expect(decodeTip20TransferCall(encodeFunctionData({ abi: tip20Abi, functionName: "approve", args: [address(), 5n] }))).toBeUndefined();
    expect(decodeTip20TransferCall(`${data}00` as Hex)).toBeUndefined();
    expect(decodeTip20TransferCall(data.slice(0, -2) as Hex)).toBeUndefined();
    expect(decodeTip20TransferCall(`${data.slice(0, 10)}ff${data.slice(12)}` as Hex)).toBeUndefined(); // dirty upper address bytes
  });
});

describe("TIP-20 transfer logs", () => {
  it("decodes Transfer and TransferWithMemo logs as viem encodes them", () => {
    for (let i = 0; i < 50; i++) {
      const [token, from, to, value, memo] = [address(), address(), address(), amount(), bytesToHex(randomBytes(32))];
      const data = encodeAbiParameters([{ type: "uint256" }], [value]);
      const withMemo = {
        address: token,
        topics: encodeEventTopics({ abi: tip20Abi, eventName: "TransferWithMemo", args: { from, to, memo } }) as Hex[],
        data,
      };
      const plain = {
        address: token,
        topics: encodeEventTopics({ abi: tip20Abi, eventName: "Transfer", args: { from, to } }) as Hex[],
        data,
      };
      expect(withMemo.topics[0]).toBe(TIP20_TRANSFER_WITH_MEMO_TOPIC);
      expect(plain.topics[0]).toBe(TIP20_TRANSFER_TOPIC);
      expect(decodeTip20TransferLog(withMemo)).toEqual({ token, from, to, amount: value, memo });
      expect(decodeTip20TransferLog(plain)).toEqual({ token, from, to, amount: value, memo: undefined });
      expect(decodeTip20TransferLog({ ...withMemo, topics: withMemo.topics.slice(0, 3) })).toBeUndefined();
      expect(decodeTip20TransferLog({ ...plain, data: `${data}00` as Hex })).toBeUndefined();
      expect(decodeTip20TransferLog({ ...plain, topics: [bytesToHex(randomBytes(32)), ...plain.topics.slice(1)] })).toBeUndefined();
    }
  });
});
