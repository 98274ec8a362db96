import { randomBytes, randomInt } from "node:crypto";
import { bytesToHex, fromRlp, toRlp, type Hex } from "viem";
import { describe, expect, it } from "vitest";
import { rlpBytes, rlpEncodeBytes, rlpEncodeList, rlpEncodeUint, rlpItemAt, rlpListItems, type RlpItem } from "./rlp.js";

type Tree = Hex | Tree[];
const randomTree = (depth: number): Tree =>
  depth > 0 && randomInt(3) === 0
    ? Array.from({ length: randomInt(0, 6) }, () => randomTree(depth - 1))
    : bytesToHex(randomBytes([0, 1, 1, 2, 20, 55, 56, 300][randomInt(8)]!));

/** Our decoding of `bytes` as a tree of hex strings, like viem's fromRlp. */
function decodeTree(bytes: Uint8Array, item: RlpItem): Tree {
  return item.isList ? rlpListItems(bytes, item).map((child) => decodeTree(bytes, child)) : bytesToHex(rlpBytes(bytes, item));
}
function encodeTree(tree: Tree): Uint8Array {
  return Array.isArray(tree) ? rlpEncodeList(tree.map(encodeTree)) : rlpEncodeBytes(Buffer.from(tree.slice(2), "hex"));
}

describe("RLP", () => {
  it("decodes and encodes what viem's RLP coder produces, byte for byte", () => {
    for (let i = 0; i < 300; i++) {
      const tree = [randomTree(3), randomTree(2)];
      const encoded = toRlp(tree as Hex[], "bytes");
      expect(decodeTree(encoded, rlpItemAt(encoded, 0, encoded.length))).toEqual(fromRlp(encoded, "hex"));
      expect(bytesToHex(encodeTree(tree))).toBe(bytesToHex(encoded));
    }
  });

  it("encodes integers minimally", () => {
    expect(bytesToHex(rlpEncodeUint(0n))).toBe("0x80");
    expect(bytesToHex(rlpEncodeUint(0x7fn))).toBe("0x7f");
    expect(bytesToHex(rlpEncodeUint(0x80n))).toBe("0x8180");
    expect(bytesToHex(rlpEncodeUint(0x1234n))).toBe("0x821234");
  });

  it("refuses non-canonical and truncated encodings", () => {
    const at = (hex: string) => () => {
      const bytes = Buffer.from(hex, "hex");
      return rlpItemAt(bytes, 0, bytes.length);
    };
    expect(at("8105")).toThrow(/single byte below 0x80 must not have a header/);
    expect(at(`b801${"ff"}`)).toThrow(/long form for a 1-byte payload/);
    expect(at(`b90038${"ff".repeat(56)}`)).toThrow(/length with a leading zero/);
    expect(at("83ffff")).toThrow(/runs past the end of its container/);
    expect(at("b9")).toThrow(/runs past the end of the input/);
    expect(at("")).toThrow(/input ends there/);
    const list = Buffer.from("c3820102", "hex"); // a list holding one 2-byte string
    expect(() => rlpListItems(list, rlpItemAt(list, 0, list.length))).not.toThrow();
    const overlong = Buffer.from("c283010203", "hex");
    expect(() => rlpListItems(overlong, rlpItemAt(overlong, 0, overlong.length))).toThrow(/runs past the end of its container/);
  });
});
