import { accounts, type LedgerPosting } from "@worldrouter/db";

/**
 * The session intent's ledger transactions, as pure functions (every posting sums to zero):
 *   deposit   channel escrow +amount        | channel deposit (owed to the payer) −amount      (open, top-up)
 *   spent     channel deposit +amount       | usage revenue −amount                           (a request's metered cost)
 *   captured  payee wallet +amount          | channel escrow −amount                           (settle or close on-chain)
 *   returned  channel deposit +amount       | channel escrow −amount                           (close: unspent deposit back)
 * After a close the channel's deposit account and its share of the escrow are both zero when capture = spent.
 */
export function sessionSpent(p: { requestId: string; channelId: string; amount: bigint }): LedgerPosting {
  return {
    kind: "session.spent",
    reference: p.channelId,
    idempotencyKey: `session.spent:${p.requestId}`,
    lines: [
      { account: accounts.channelDeposit(p.channelId), amount: p.amount },
      { account: accounts.usageRevenue(), amount: -p.amount },
    ],
  };
}

export function sessionDeposited(p: { channelId: string; token: string; amount: bigint; txHash: string }): LedgerPosting {
  return {
    kind: "session.deposited",
    reference: p.channelId,
    idempotencyKey: `session.deposited:${p.txHash}:${p.channelId}`,
    lines: [
      { account: accounts.channelEscrow(p.token), amount: p.amount },
      { account: accounts.channelDeposit(p.channelId), amount: -p.amount },
    ],
  };
}

/** A settle (captured only) or a close (captured and the rest of the deposit returned to the payer). */
export function sessionSettled(p: { channelId: string; token: string; captured: bigint; returned: bigint; txHash: string }): LedgerPosting {
  const lines = [
    { account: accounts.payeeWallet(p.token), amount: p.captured },
    { account: accounts.channelEscrow(p.token), amount: -p.captured },
  ];
  if (p.returned > 0n)
    lines.push(
      { account: accounts.channelDeposit(p.channelId), amount: p.returned },
      { account: accounts.channelEscrow(p.token), amount: -p.returned },
    );
  return { kind: "session.settled", reference: p.channelId, idempotencyKey: `session.settled:${p.txHash}`, lines };
}
