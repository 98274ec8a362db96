import { Inject, Injectable } from "@nestjs/common";
import { postLedgerTransaction, Prisma, PrismaClient } from "@worldrouter/db";
import type { Logger } from "@worldrouter/observability";
import { CONFIG, LOGGER, PermanentJobError } from "@worldrouter/runtime";
import type { Config } from "@worldrouter/config";
import type { Hex } from "viem";
import { PayeeWallet } from "../chain/payee-wallet.js";
import { chargeRefund } from "../ledger/charge-postings.js";

/**
 * Sends a charge payment back to its payer on-chain (the payment bought an inference that served nothing).
 * Crash-safe: the signed transaction is stored before broadcast, the `(kind, chargePaymentId)` unique key
 * allows one refund per payment, and a retry re-broadcasts the stored transaction.
 */
@Injectable()
export class RefundChargeUseCase {
  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(PayeeWallet) private readonly wallet: PayeeWallet,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async refund(paymentId: string): Promise<void> {
    const payment = await this.db.chargePayment.findUnique({ where: { id: paymentId } });
    if (!payment) throw new PermanentJobError(`charge payment ${paymentId} does not exist`);
    if (payment.status === "refunded") return;
    if (payment.status !== "refunding") throw new PermanentJobError(`charge payment ${paymentId} is ${payment.status}, not due a refund`);
    const amount = BigInt(payment.amount.toFixed());

    let row = await this.db.settlement.findUnique({ where: { kind_chargePaymentId: { kind: "refund", chargePaymentId: paymentId } } });
    if (!row) {
      const signed = await this.wallet.signTokenTransfer(payment.payer as Hex, amount, `worldrouter:refund:${paymentId}`);
      try {
        row = await this.db.settlement.create({
          data: {
            kind: "refund",
            chainId: this.config.chain.chainId,
            amount: payment.amount,
            txHash: signed.txHash,
            rawTransaction: signed.rawTransaction,
            status: "submitted",
            chargePaymentId: paymentId,
          },
        });
      } catch (err) {
        if (!(err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002")) throw err;
        row = await this.db.settlement.findUniqueOrThrow({
          where: { kind_chargePaymentId: { kind: "refund", chargePaymentId: paymentId } },
        });
      }
    }
    const receipt = await this.wallet.broadcast(row.rawTransaction as Hex, row.txHash as Hex);
    if (receipt.status !== "success") {
      await this.db.settlement.update({
        where: { id: row.id },
        data: { status: "failed", error: `refund transaction reverted in block ${receipt.blockNumber}` },
      });
      throw new PermanentJobError(`refund ${row.txHash} for payment ${paymentId} reverted; needs an operator`);
    }
    await this.db.$transaction(async (tx) => {
      await tx.settlement.update({
        where: { id: row.id },
        data: { status: "confirmed", blockNumber: receipt.blockNumber, confirmedAt: new Date(), rawTransaction: null },
      });
      await postLedgerTransaction(tx, chargeRefund({ paymentId, payer: payment.payer, token: payment.token, amount }));
      await tx.chargePayment.update({ where: { id: paymentId }, data: { status: "refunded" } });
    });
    this.logger.info({ paymentId, txHash: row.txHash, payer: payment.payer, amount: amount.toString() }, "charge refunded on-chain");
  }
}
