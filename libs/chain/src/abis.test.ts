import { describe, expect, it } from "vitest";
import { Abis } from "viem/tempo";
import { tip20Abi } from "./abis.js";

describe("tip20Abi", () => {
  it("is a subset of viem's TIP-20 ABI, entry for entry", () => {
    for (const item of tip20Abi) {
      expect(Abis.tip20.filter((candidate) => candidate.name === item.name && candidate.type === item.type)).toEqual([item]);
    }
  });
});
