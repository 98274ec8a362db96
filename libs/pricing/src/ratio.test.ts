import { describe, expect, it } from "vitest";
import { InvalidAmountError } from "./errors.js";
import { DEFAULT_OVERHEAD, parseRatio, ratio } from "./ratio.js";

describe("ratio", () => {
  it("default overhead is exactly 3/2", () => {
    expect(DEFAULT_OVERHEAD).toEqual({ numerator: 3n, denominator: 2n });
  });

  it.each([
    ["1.5", 3n, 2n],
    ["1", 1n, 1n],
    ["2.25", 9n, 4n],
    ["1.333333", 1_333_333n, 1_000_000n],
    ["0", 0n, 1n],
    ["1.100000", 11n, 10n],
  ])("parses %s as %s/%s, reduced", (decimal, numerator, denominator) => {
    expect(parseRatio(decimal)).toEqual({ numerator, denominator });
  });

  it("accepts the config's precision (6 decimals) and rejects more", () => {
    expect(parseRatio("1.000001")).toEqual({ numerator: 1_000_001n, denominator: 1_000_000n });
    expect(() => parseRatio("1.0000001")).toThrow(InvalidAmountError);
    expect(() => parseRatio("-1")).toThrow(InvalidAmountError);
  });

  it("rejects a zero denominator or negative parts", () => {
    expect(() => ratio(1n, 0n)).toThrow(InvalidAmountError);
    expect(() => ratio(-1n, 2n)).toThrow(InvalidAmountError);
    expect(ratio(6n, 4n)).toEqual({ numerator: 3n, denominator: 2n });
  });
});
