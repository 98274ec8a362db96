import { describe, expect, it } from "vitest";
import { InvalidAmountError } from "./errors.js";
import { BASE_UNITS_PER_USD, ceilDiv, formatUsd, parseFixedPoint, usdToBaseUnits } from "./money.js";

describe("usdToBaseUnits", () => {
  it.each([
    ["0", 0n],
    ["0.000001", 1n],
    ["0.125", 125_000n],
    ["0.0125", 12_500n],
    ["1", 1_000_000n],
    ["1.00", 1_000_000n],
    ["12.5", 12_500_000n],
    ["180.00", 180_000_000n],
    ["123456789012.123456", 123_456_789_012_123_456n],
  ])("%s → %s base units", (usd, expected) => {
    expect(usdToBaseUnits(usd)).toBe(expected);
  });

  it.each(["", "-1", "1e3", "0.0000001", "1.", ".5", "1,5", " 1", "0x10", "NaN"])("rejects %j", (usd) => {
    expect(() => usdToBaseUnits(usd)).toThrow(InvalidAmountError);
  });

  it("parses other precisions exactly", () => {
    expect(parseFixedPoint("1.5", 4)).toBe(15_000n);
    expect(() => parseFixedPoint("1.23456", 4)).toThrow(InvalidAmountError);
  });
});

describe("ceilDiv", () => {
  it.each([
    [0n, 1_000_000n, 0n],
    [1n, 1_000_000n, 1n],
    [999_999n, 1_000_000n, 1n],
    [1_000_000n, 1_000_000n, 1n],
    [1_000_001n, 1_000_000n, 2n],
    [10n ** 30n + 1n, 10n ** 6n, 10n ** 24n + 1n],
  ])("ceil(%s / %s) = %s", (numerator, denominator, expected) => {
    expect(ceilDiv(numerator, denominator)).toBe(expected);
  });
});

describe("formatUsd", () => {
  it.each([
    [0n, "$0.00"],
    [1n, "$0.000001"],
    [125n, "$0.000125"],
    [125_000n, "$0.125"],
    [1_500_000n, "$1.50"],
    [BASE_UNITS_PER_USD, "$1.00"],
    [180_000_000n, "$180.00"],
    [123_456_789_012_123_456n, "$123456789012.123456"],
    [-500_000n, "-$0.50"],
  ])("%s → %s", (amount, expected) => {
    expect(formatUsd(amount)).toBe(expected);
  });

  it("round-trips with usdToBaseUnits", () => {
    for (const amount of [0n, 1n, 7n, 12_500n, 999_999n, 1_000_001n, 10n ** 18n + 3n]) {
      expect(usdToBaseUnits(formatUsd(amount).slice(1))).toBe(amount);
    }
  });
});
