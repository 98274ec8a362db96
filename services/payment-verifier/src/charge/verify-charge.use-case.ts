import { Injectable } from "@nestjs/common";
import type { VerifyPaymentRequest, VerifyPaymentResult } from "@worldrouter/contracts";

/** Verifies a charge credential against the challenge it answers and the chain. */
@Injectable()
export class VerifyChargeUseCase {
  async verify(_request: VerifyPaymentRequest): Promise<VerifyPaymentResult> {
    return { ok: false, problem: { type: "https://paymentauth.org/problems/method-unsupported", title: "Not Implemented", status: 501, detail: "charge verification is not implemented yet" } };
  }
}
