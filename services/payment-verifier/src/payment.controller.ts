import { Controller, Inject } from "@nestjs/common";
import { MessagePattern, Payload } from "@nestjs/microservices";
import {
  RPC,
  SessionCredentialRequest,
  VerifyPaymentRequest,
  type PingResult,
  type SessionCredentialResult,
  type VerifyPaymentResult,
} from "@worldrouter/contracts";
import { VerifyChargeUseCase } from "./charge/verify-charge.use-case.js";
import { VerifySessionUseCase } from "./session/verify-session.use-case.js";

/** A message the gateway should never send (a version skew or a bug): refused as a malformed credential, nothing done. */
function malformed(what: string, issue: string | undefined) {
  return {
    ok: false as const,
    problem: {
      type: "https://paymentauth.org/problems/malformed-credential",
      title: "Malformed Credential",
      status: 402,
      detail: `${what} rejected: ${issue}`,
    },
  };
}

/** RPC edge of the verifier: parse the message, call the use-case, return its typed result. */
@Controller()
export class PaymentController {
  constructor(
    @Inject(VerifyChargeUseCase) private readonly verifyCharge: VerifyChargeUseCase,
    @Inject(VerifySessionUseCase) private readonly verifySession: VerifySessionUseCase,
  ) {}

  @MessagePattern(RPC.verifyPayment)
  async verifyPayment(@Payload() message: unknown): Promise<VerifyPaymentResult> {
    const parsed = VerifyPaymentRequest.safeParse(message);
    if (!parsed.success) return malformed("verification request", parsed.error.issues[0]?.message);
    return this.verifyCharge.verify(parsed.data);
  }

  @MessagePattern(RPC.sessionCredential)
  async sessionCredential(@Payload() message: unknown): Promise<SessionCredentialResult> {
    const parsed = SessionCredentialRequest.safeParse(message);
    if (!parsed.success) return malformed("session credential request", parsed.error.issues[0]?.message);
    return this.verifySession.verify(parsed.data);
  }

  @MessagePattern(RPC.ping)
  ping(): PingResult {
    return { service: "payment-verifier", at: Date.now() };
  }
}
