import { setTimeout as sleep } from "node:timers/promises";
import { Inject, Injectable } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { postLedgerTransaction, type Prisma, PrismaClient } from "@worldrouter/db";
import { counter, observedGauge, type Logger } from "@worldrouter/observability";
import { CONFIG, Leases, LOGGER, METRICS, PermanentJobError, type Lease, type LeaseGrant } from "@worldrouter/runtime";
import type { Counter, Registry } from "prom-client";
import type { Hex } from "viem";
import { PayeeWallet, type MinedReceipt } from "../chain/payee-wallet.js";
import { chargeRefund, chargeRefundDust } from "../ledger/charge-postings.js";

// The signer lease covers one sign-persist-broadcast (a few chain calls); a holder that takes longer than the TTL
// finds out at its next check and stops before the next step.
const SIGNER_LEASE_TTL_MS = 30_000;
const SIGNER_LEASE_WAIT_MS = 15_000;
// Receipt lookups per attempt (one block is about a second); after them the job is retried with backoff.
const RECEIPT_LOOKUPS = 20;
const RECEIPT_LOOKUP_EVERY_MS = 500;

/** The refund's transaction is out but not mined yet: retried (with backoff) by looking its hash up again. */
export class RefundNotMinedError extends Error {
  override readonly name = "RefundNotMinedError";
}

type RefundRow = Prisma.SettlementGetPayload<object>;
type Payment = Prisma.ChargePaymentGetPayload<object>;
export type RefundOutcome = "refunded" | "kept_as_dust";

/**
 * Sends a charge payment back to its payer on-chain (the payment bought an inference that served nothing), once,
 * with any number of settlement replicas:
 * - one signer at a time for the payee key (a Redis lease with a fencing token, checked before every step), the
 *   nonce taken from the chain's pending nonce under the lease;
 * - the signed transaction is stored (`settlements.rawTransaction`, with its nonce) before it is broadcast, so a
 *   retry re-sends the same transaction instead of paying twice;
 * - the outcome is found by looking the hash up, never by waiting: mined → confirmed (ledger + `refunded`);
 *   reverted, or its nonce used by another transaction ("nonce too low" and no receipt) → it can never be mined,
 *   so a new one is signed with a fresh nonce; not mined yet → the job retries with backoff for days;
 * - a refund smaller than the gas it would cost is not sent: it is booked as dust (`kept_as_dust`);
 * - one that cannot finish ends `failed` with its error (`wr_refunds_stuck`).
 */
@Injectable()
export class RefundChargeUseCase {
  private readonly signerLease: Lease;
  private readonly outcomes: Counter;

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(PayeeWallet) private readonly wallet: PayeeWallet,
    @Inject(Leases) leases: Leases,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) metrics: Registry,
  ) {
    this.signerLease = leases.lease(`payee-signer:${config.chain.payee}`, SIGNER_LEASE_TTL_MS);
    this.outcomes = counter(metrics, "wr_refunds_total", "Charge refunds finished, by outcome (refunded, kept_as_dust, failed)", [
      "outcome",
    ]);
    observedGauge(
      metrics,
      "wr_refunds_stuck",
      "Refunds that gave up after every retry (settlements.status = failed): need an operator",
      () => this.db.settlement.count({ where: { kind: "refund", status: "failed" } }),
    );
  }

  /**
   * Finishes the refund of one payment (idempotent). `finalAttempt`: no retry follows, so a failure now marks the
   * refund `failed` for ops instead of leaving it to the next attempt.
   */
  async refund(paymentId: string, options: { finalAttempt?: boolean } = {}): Promise<RefundOutcome> {
    try {
      return await this.finish(paymentId);
    } catch (err) {
      await this.recordFailure(paymentId, err as Error, Boolean(options.finalAttempt) || err instanceof PermanentJobError);
      throw err;
    }
  }

  private async finish(paymentId: string): Promise<RefundOutcome> {
    const payment = await this.db.chargePayment.findUnique({ where: { id: paymentId } });
    if (!payment) throw new PermanentJobError(`charge payment ${paymentId} does not exist`);
    if (payment.status === "refunded" || payment.status === "kept_as_dust") return payment.status;
    if (payment.status !== "refunding") throw new PermanentJobError(`charge payment ${paymentId} is ${payment.status}, not due a refund`);
    const amount = BigInt(payment.amount.toFixed());

    let row = await this.findRow(paymentId);
    if (!row?.txHash) {
      // Nothing was ever signed, so nothing can be mined: the one moment a refund may still be kept as dust.
      const fee = await this.wallet.transferFee(payment.payer as Hex, amount, refundReason(paymentId));
      if (amount < fee) return this.keepAsDust(payment, amount, fee);
      row = await this.send(payment, amount, row);
    } else {
      const mined = await this.wallet.receipt(row.txHash as Hex);
      if (mined) return this.conclude(payment, amount, row, mined);
      row = await this.resend(payment, amount, row);
    }
    for (let lookup = 0; lookup < RECEIPT_LOOKUPS; lookup++) {
      const mined = await this.wallet.receipt(row.txHash as Hex);
      if (mined) return this.conclude(payment, amount, row, mined);
      await sleep(RECEIPT_LOOKUP_EVERY_MS);
    }
    throw new RefundNotMinedError(`refund ${row.txHash} for payment ${paymentId} is not mined yet`);
  }

  /** A stored, unmined transaction: send it again, or replace it if its nonce went to another transaction. */
  private async resend(payment: Payment, amount: bigint, row: RefundRow): Promise<RefundRow> {
    // The chain's nonce first, then the receipt: if the nonce is used and this hash is still not mined after that,
    // it never will be (a node may even accept the stale transaction into its pool).
    const nonceUsed = async () => row.nonce !== null && (await this.wallet.minedNonce()) > row.nonce;
    if (!(await nonceUsed())) {
      if ((await this.wallet.broadcast(row.rawTransaction as Hex)) === "accepted") return row;
      // "nonce too low": mined just now (the lookups find it), or the nonce went to something else.
      if (!(await nonceUsed())) {
        throw new RefundNotMinedError(`refund ${row.txHash}: the node reports nonce ${row.nonce} used, the chain does not yet`);
      }
    }
    if (await this.wallet.receipt(row.txHash as Hex)) return row;
    this.logger.warn(
      { paymentId: payment.id, txHash: row.txHash, nonce: row.nonce?.toString() },
      "refund nonce used by another transaction; signing anew",
    );
    return this.send(payment, amount, row);
  }

  private async conclude(payment: Payment, amount: bigint, row: RefundRow, mined: MinedReceipt): Promise<RefundOutcome> {
    if (mined.status !== "success") {
      // Reverted: its nonce is spent, the money did not move. Sign again (after a simulation that must pass).
      this.logger.error({ paymentId: payment.id, txHash: row.txHash, block: mined.blockNumber.toString() }, "refund transaction reverted");
      await this.db.settlement.update({
        where: { id: row.id },
        data: { error: `transaction ${row.txHash} reverted in block ${mined.blockNumber}` },
      });
      const replaced = await this.send(payment, amount, row);
      throw new RefundNotMinedError(`refund for payment ${payment.id} reverted; sent again as ${replaced.txHash}`);
    }
    await this.db.$transaction(async (tx) => {
      await tx.settlement.update({
        where: { id: row.id },
        data: { status: "confirmed", blockNumber: mined.blockNumber, confirmedAt: new Date(), rawTransaction: null, error: null },
      });
      await postLedgerTransaction(tx, chargeRefund({ paymentId: payment.id, payer: payment.payer, token: payment.token, amount }));
      await tx.chargePayment.updateMany({ where: { id: payment.id, status: "refunding" }, data: { status: "refunded" } });
    });
    this.outcomes.inc({ outcome: "refunded" });
    this.logger.info(
      { paymentId: payment.id, txHash: row.txHash, payer: payment.payer, amount: amount.toString() },
      "charge refunded on-chain",
    );
    return "refunded";
  }

  /**
   * Under the payee signer lease: simulate, take the pending nonce, sign, store (replacing `previous` only if it is
   * still the stored one), broadcast. The lease is checked before each step: a holder that lost it stops.
   */
  private send(payment: Payment, amount: bigint, previous: RefundRow | null): Promise<RefundRow> {
    return this.signerLease.withLease(SIGNER_LEASE_WAIT_MS, async (grant) => {
      const current = await this.findRow(payment.id);
      // Another replica sent it while this one waited for the lease.
      if (current?.txHash && current.txHash !== previous?.txHash) return current;
      const reason = refundReason(payment.id);
      await this.wallet.simulateTransfer(payment.payer as Hex, amount, reason);
      await grant.assertHeld();
      const nonce = await this.wallet.pendingNonce();
      const signed = await this.wallet.signTokenTransfer(payment.payer as Hex, amount, reason, nonce);
      await grant.assertHeld();
      const row = await this.store(payment, signed, current, grant);
      await grant.assertHeld();
      if ((await this.wallet.broadcast(signed.rawTransaction)) === "nonce-too-low") {
        throw new RefundNotMinedError(`refund ${signed.txHash}: nonce ${nonce} was used while signing; the retry signs anew`);
      }
      return row;
    });
  }

  private async store(
    payment: Payment,
    signed: { rawTransaction: Hex; txHash: Hex; nonce: bigint },
    current: RefundRow | null,
    grant: LeaseGrant,
  ): Promise<RefundRow> {
    const data = {
      txHash: signed.txHash,
      rawTransaction: signed.rawTransaction,
      nonce: signed.nonce,
      status: "submitted" as const,
    };
    if (!current) {
      return this.db.settlement.create({
        data: { ...data, kind: "refund", chainId: this.config.chain.chainId, amount: payment.amount, chargePaymentId: payment.id },
      });
    }
    // Compare-and-set on the stored hash: only the transaction this holder looked at is replaced.
    const replaced = await this.db.settlement.updateMany({ where: { id: current.id, txHash: current.txHash }, data });
    if (replaced.count !== 1) throw new Error(`refund for payment ${payment.id} changed under the signer lease (token ${grant.token})`);
    return this.db.settlement.findUniqueOrThrow({ where: { id: current.id } });
  }

  private async keepAsDust(payment: Payment, amount: bigint, fee: bigint): Promise<RefundOutcome> {
    await this.db.$transaction(async (tx) => {
      const moved = await tx.chargePayment.updateMany({ where: { id: payment.id, status: "refunding" }, data: { status: "kept_as_dust" } });
      if (moved.count === 0) return;
      await postLedgerTransaction(tx, chargeRefundDust({ paymentId: payment.id, payer: payment.payer, amount }));
      // An earlier attempt may have left an unsent refund row (its error); nothing is owed any more.
      await tx.settlement.deleteMany({ where: { kind: "refund", chargePaymentId: payment.id, txHash: null } });
    });
    this.outcomes.inc({ outcome: "kept_as_dust" });
    this.logger.info(
      { paymentId: payment.id, payer: payment.payer, amount: amount.toString(), gasCost: fee.toString() },
      "refund smaller than its gas: kept as dust",
    );
    return "kept_as_dust";
  }

  /** Keeps the last error on the refund's row; after the last attempt the refund is `failed` (visible to ops). */
  private async recordFailure(paymentId: string, err: Error, final: boolean): Promise<void> {
    const error = `${err.name}: ${err.message}`.slice(0, 2000);
    try {
      const payment = await this.db.chargePayment.findUnique({ where: { id: paymentId } });
      if (payment?.status !== "refunding") return;
      const row = await this.findRow(paymentId);
      if (row) {
        await this.db.settlement.updateMany({
          where: { id: row.id, status: { not: "confirmed" } },
          data: { error, ...(final ? { status: "failed" as const } : {}) },
        });
      } else {
        await this.db.settlement.create({
          data: {
            kind: "refund",
            chainId: this.config.chain.chainId,
            amount: payment.amount,
            chargePaymentId: paymentId,
            status: final ? "failed" : "pending",
            error,
          },
        });
      }
      if (final) {
        this.outcomes.inc({ outcome: "failed" });
        this.logger.error({ paymentId, err: error }, "refund gave up after its last attempt; needs an operator (wr_refunds_stuck)");
      }
    } catch (recordErr) {
      this.logger.error({ paymentId, err: error, recordErr: (recordErr as Error).message }, "could not record the refund failure");
    }
  }

  private findRow(paymentId: string): Promise<RefundRow | null> {
    return this.db.settlement.findUnique({ where: { kind_chargePaymentId: { kind: "refund", chargePaymentId: paymentId } } });
  }
}

/** The memo of a refund transfer: says on-chain which payment it returns. */
const refundReason = (paymentId: string) => `worldrouter:refund:${paymentId}`;
