import { accounts, type LedgerPosting } from "@worldrouter/db";

/**
 * The charge intent's ledger transactions, as pure functions (every posting sums to zero):
 *   received  payee wallet +paid            | payer prepaid −paid
 *   usage     payer prepaid +paid           | usage revenue −actual | estimate variance −(paid − actual)
 *   refund    payer prepaid +paid           | payee wallet −paid
 *   dust      payer prepaid +paid           | refund dust revenue −paid   (a refund smaller than its own gas, kept)
 * The variance line is the overhead kept (positive margin) or lost (actual above the estimate).
 */
export function chargeReceived(p: { paymentId: string; payer: string; token: string; amount: bigint }): LedgerPosting {
  return {
    kind: "charge.received",
    reference: p.paymentId,
    idempotencyKey: `charge.received:${p.paymentId}`,
    lines: [
      { account: accounts.payeeWallet(p.token), amount: p.amount },
      { account: accounts.payerPrepaid(p.payer), amount: -p.amount },
    ],
  };
}

export function chargeUsage(p: { requestId: string; payer: string; paid: bigint; actualCost: bigint }): LedgerPosting {
  return {
    kind: "charge.usage",
    reference: p.requestId,
    idempotencyKey: `charge.usage:${p.requestId}`,
    lines: [
      { account: accounts.payerPrepaid(p.payer), amount: p.paid },
      { account: accounts.usageRevenue(), amount: -p.actualCost },
      { account: accounts.estimateVariance(), amount: p.actualCost - p.paid },
    ],
  };
}

export function chargeRefund(p: { paymentId: string; payer: string; token: string; amount: bigint }): LedgerPosting {
  return {
    kind: "charge.refund",
    reference: p.paymentId,
    idempotencyKey: `charge.refund:${p.paymentId}`,
    lines: [
      { account: accounts.payerPrepaid(p.payer), amount: p.amount },
      { account: accounts.payeeWallet(p.token), amount: -p.amount },
    ],
  };
}

export function chargeRefundDust(p: { paymentId: string; payer: string; amount: bigint }): LedgerPosting {
  return {
    kind: "charge.refund_dust",
    reference: p.paymentId,
    idempotencyKey: `charge.refund_dust:${p.paymentId}`,
    lines: [
      { account: accounts.payerPrepaid(p.payer), amount: p.amount },
      { account: accounts.refundDust(), amount: -p.amount },
    ],
  };
}
