/**
 * Integer money. USDC.e has 6 decimals, so every amount is a bigint of base units ($1 = 1_000_000) and prices
 * are base units per 1M tokens. Decimal strings appear only at the edges: parsed here, formatted here.
 */
import { InvalidAmountError } from "./errors.js";

export const USD_DECIMALS = 6;
export const BASE_UNITS_PER_USD = 1_000_000n;
/** Prices are quoted per this many tokens. */
export const TOKENS_PER_PRICE_UNIT = 1_000_000n;

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/** Exact fixed-point parse: "0.125" with 6 decimals → 125_000n. Rejects what it cannot represent exactly. */
export function parseFixedPoint(decimal: string, decimals: number): bigint {
  const match = DECIMAL.exec(decimal);
  if (!match) throw new InvalidAmountError(decimal, "expected a non-negative decimal like 1.25");
  const [, whole = "0", fraction = ""] = match;
  if (fraction.length > decimals) throw new InvalidAmountError(decimal, `more than ${decimals} decimals`);
  return BigInt(whole) * 10n ** BigInt(decimals) + BigInt(fraction.padEnd(decimals, "0") || "0");
}

/** The one conversion from a dollar amount to base units: usdToBaseUnits("0.125") === 125_000n. */
export function usdToBaseUnits(usd: string): bigint {
  return parseFixedPoint(usd, USD_DECIMALS);
}

/** ceil(numerator / denominator) for non-negative numerator and positive denominator. */
export function ceilDiv(numerator: bigint, denominator: bigint): bigint {
  return (numerator + denominator - 1n) / denominator;
}

/**
 * Display only: 125n → "$0.000125", 1_500_000n → "$1.50", 0n → "$0.00". Keeps every significant decimal (never
 * rounds), and at least two.
 */
export function formatUsd(baseUnits: bigint): string {
  const sign = baseUnits < 0n ? "-" : "";
  const abs = baseUnits < 0n ? -baseUnits : baseUnits;
  const whole = abs / BASE_UNITS_PER_USD;
  const fraction = (abs % BASE_UNITS_PER_USD).toString().padStart(USD_DECIMALS, "0").replace(/0+$/, "").padEnd(2, "0");
  return `${sign}$${whole}.${fraction}`;
}
