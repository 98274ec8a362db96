/** Exact non-negative rationals for multipliers such as the charge-intent overhead (1.5 = 3/2). */
import { InvalidAmountError } from "./errors.js";
import { parseFixedPoint } from "./money.js";

export interface Ratio {
  readonly numerator: bigint;
  readonly denominator: bigint;
}

/** Up to this many decimals, the precision the config accepts for PRICE_OVERHEAD. */
const RATIO_DECIMALS = 6;

/** "1.5" → 3/2, reduced. */
export function parseRatio(decimal: string): Ratio {
  return ratio(parseFixedPoint(decimal, RATIO_DECIMALS), 10n ** BigInt(RATIO_DECIMALS));
}

export function ratio(numerator: bigint, denominator: bigint): Ratio {
  if (numerator < 0n || denominator <= 0n) throw new InvalidAmountError(`${numerator}/${denominator}`, "expected a non-negative ratio");
  const divisor = gcd(numerator, denominator);
  return { numerator: numerator / divisor, denominator: denominator / divisor };
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a === 0n ? 1n : a;
}

/** estimated_cost = prompt × input × overhead; 1.5 leaves room for the completion the estimate cannot see. */
export const DEFAULT_OVERHEAD: Ratio = ratio(3n, 2n);
