import type { ChargeVerifiedEvent } from "@worldrouter/contracts";
import type { PaymentFacts } from "./charge-payments.repository.js";

/** The money event of a payment found mined (by its verification or by the charge-outcomes job). */
export function chargeVerifiedEvent(paymentId: string, facts: PaymentFacts, blockNumber: bigint, verifiedAt: Date): ChargeVerifiedEvent {
  return {
    kind: "charge.verified",
    paymentId,
    challengeId: facts.challengeId,
    requestId: facts.requestId,
    txHash: facts.txHash,
    payer: facts.payer,
    recipient: facts.recipient,
    token: facts.token,
    chainId: facts.chainId,
    amount: facts.amount.toString(),
    blockNumber: blockNumber.toString(),
    verifiedAt: verifiedAt.getTime(),
  };
}
