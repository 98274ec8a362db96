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

/** The problem for an unpaid request (with the price, for humans). */
export function paymentRequired(detail: string): PaymentProblemBody {
  return paymentProblem(new Errors.PaymentRequiredError({ description: detail }));
}
