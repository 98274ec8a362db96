/**
 * Typed failures of the pricing lib. Every one is permanent (bad input or configuration): retrying the same
 * call cannot succeed, so callers reject the request or fail boot rather than retry.
 */
export class PricingError extends Error {
  override readonly name: string = "PricingError";
  constructor(
    readonly shortMessage: string,
    readonly details?: string,
  ) {
    super(details ? `${shortMessage}: ${details}` : shortMessage);
  }
}

export class UnknownModelError extends PricingError {
  override readonly name = "UnknownModelError";
  constructor(readonly modelId: string) {
    super("unknown model", modelId);
  }
}

/** A decimal string that is not a valid non-negative amount with at most the allowed decimals. */
export class InvalidAmountError extends PricingError {
  override readonly name = "InvalidAmountError";
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super("invalid amount", `${JSON.stringify(input)}: ${reason}`);
  }
}

/** Token counts that cannot come from a real response (negative, or more cached than prompt tokens). */
export class InvalidUsageError extends PricingError {
  override readonly name = "InvalidUsageError";
}
