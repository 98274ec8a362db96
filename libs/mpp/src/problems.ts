import { Errors } from "mppx";

/**
 * Payment problems (RFC 9457) are mppx's error classes: each carries exactly one problem `type` and
 * status. These helpers turn any of them into the wire shape we send and pass between services.
 */
export { Errors as PaymentErrors };

export interface PaymentProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
}

export function paymentProblem(error: Errors.PaymentError): PaymentProblemBody {
  const details = error.toProblemDetails() as { type: string; title: string; status: number; detail: string };
  return { type: details.type, title: details.title, status: details.status, detail: details.detail };
}

/** type/title/status of mppx's PaymentRequiredError, read once (building an Error per 402 captures a stack). */
const PAYMENT_REQUIRED = (() => {
  const { type, title, status } = paymentProblem(new Errors.PaymentRequiredError());
  return { type, title, status };
})();

/**
 * The problem for an unpaid request (with the price, for humans): equal to
 * `paymentProblem(new Errors.PaymentRequiredError({ description: detail }))`, whose message is
 * "Payment is required (<detail>)." (or "Payment is required." without a detail).
 */
export function paymentRequired(detail: string): PaymentProblemBody {
  return { ...PAYMENT_REQUIRED, detail: detail ? `Payment is required (${detail}).` : "Payment is required." };
}
