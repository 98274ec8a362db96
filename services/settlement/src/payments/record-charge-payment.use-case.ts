import { Inject, Injectable } from "@nestjs/common";
import type { ChargeVerifiedEvent } from "@worldrouter/contracts";
import { chargeReceived } from "../ledger/charge-postings.js";
import { LedgerRepository } from "../ledger/ledger.repository.js";

/** A verified charge: the money is in the payee wallet and owed to the payer until usage consumes it. */
@Injectable()
export class RecordChargePaymentUseCase {
  constructor(@Inject(LedgerRepository) private readonly ledger: LedgerRepository) {}

  /** Idempotent: a redelivered event changes nothing (and returns false). */
  async record(event: ChargeVerifiedEvent): Promise<boolean> {
    return this.ledger.recordChargePayment(
      event,
      chargeReceived({ paymentId: event.paymentId, payer: event.payer, token: event.token, amount: BigInt(event.amount) }),
    );
  }
}
