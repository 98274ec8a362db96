import { Inject, Injectable } from "@nestjs/common";
import type { ChargeVerifiedEvent } from "@worldrouter/contracts";
import { claimEvent, postLedgerTransaction, Prisma, PrismaClient } from "@worldrouter/db";
import { chargeReceived } from "../ledger/charge-postings.js";

/** A verified charge: the money is in the payee wallet and owed to the payer until usage consumes it. */
@Injectable()
export class RecordChargePaymentUseCase {
  constructor(@Inject(PrismaClient) private readonly db: PrismaClient) {}

  async record(event: ChargeVerifiedEvent): Promise<void> {
    await this.db.$transaction(async (tx) => {
      if (!(await claimEvent(tx, "settlement.payments", event.paymentId))) return;
      await tx.settlement.create({
        data: {
          kind: "charge", chainId: event.chainId, amount: new Prisma.Decimal(event.amount), txHash: event.txHash, status: "confirmed",
          blockNumber: event.blockNumber === null ? null : BigInt(event.blockNumber), chargePaymentId: event.paymentId, confirmedAt: new Date(event.verifiedAt),
        },
      });
      await postLedgerTransaction(tx, chargeReceived({ paymentId: event.paymentId, payer: event.payer, token: event.token, amount: BigInt(event.amount) }));
    });
  }
}
