import type { PaymentProblem } from "@worldrouter/contracts";

/**
 * An answer that is not a payment problem: the client must send the same credential again later (Retry-After) and
 * must not pay a new challenge (the gateway attaches none). Each factory below is one problem type.
 */
export class RetryLaterError extends Error {
  override readonly name = "RetryLaterError";
  constructor(readonly problem: PaymentProblem & { retryAfter: number }) {
    super(problem.detail);
  }

  get outcome(): string {
    return this.problem.type.split("/").pop()!;
  }
}

const PROBLEMS = "https://worldrouter.dev/problems";

/** Broadcast, outcome unknown: the transaction may still be mined; its receipt is looked up until it cannot be. */
export const paymentPending = (txHash: string, retryAfter: number) =>
  new RetryLaterError({
    type: `${PROBLEMS}/payment-pending`,
    title: "Payment Pending",
    status: 503,
    detail: `transaction ${txHash} was broadcast but its outcome is not known yet; send this same credential again after Retry-After: it is served once the transaction is mined, and if it never is, nothing was paid. Do not pay a new challenge.`,
    retryAfter,
  });

/** The same credential is being verified for another request right now. */
export const paymentInProgress = (challengeId: string, retryAfter: number) =>
  new RetryLaterError({
    type: `${PROBLEMS}/payment-in-progress`,
    title: "Payment In Progress",
    status: 503,
    detail: `a payment for challenge ${challengeId} with this credential is being verified for another request; send it again after Retry-After. Do not pay a new challenge.`,
    retryAfter,
  });

/** The fee sponsor's spend budget (per payer: 429, all payers: 503) is used up for this window. */
export const sponsorBudgetExhausted = (scope: "payer" | "global", retryAfter: number) =>
  new RetryLaterError({
    type: `${PROBLEMS}/sponsor-budget-exhausted`,
    title: "Sponsor Budget Exhausted",
    status: scope === "payer" ? 429 : 503,
    detail:
      scope === "payer"
        ? "this payer has used its budget of sponsored gas for now; nothing was paid. Retry after Retry-After, or pay in push mode (your own gas)."
        : "the fee sponsor's gas budget is used up for now; nothing was paid. Retry after Retry-After, or pay in push mode (your own gas).",
    retryAfter,
  });
