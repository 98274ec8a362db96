import { tip20Abi } from "@worldrouter/chain";
import { getAbiItem, type Address, type Hex, type PublicClient } from "viem";

/**
 * Invariant 4, "the ledger equals the chain", for the charge intent: over a block range, the charge payments the
 * ledger recorded equal the token's Transfer logs to the payee, transaction by transaction; and the refunds it
 * recorded as confirmed equal the Transfer logs from the payee to anyone but the fee manager (gas is paid in the
 * token too, as a transfer to the fee manager). Read-only: it reports, it never repairs.
 */

/** Charge payment statuses in which the money reached the payee (a later refund is a separate transfer back). */
export const MONEY_ARRIVED_STATUSES = ["verified", "consumed", "refunding", "refunded", "kept_as_dust"] as const;

/** Tempo's fee manager precompile: receives every transaction's fee, in the fee token. */
export const TEMPO_FEE_MANAGER: Address = "0xfeec000000000000000000000000000000000000";

const DEFAULT_CHUNK_BLOCKS = 2_000n;
const transferEvent = getAbiItem({ abi: tip20Abi, name: "Transfer" });

/** Anything with pg's `query` (a Pool or a Client). */
export interface Queryable {
  query<R extends object>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

export interface ReconcileChargesInput {
  db: Queryable;
  publicClient: Pick<PublicClient, "getLogs">;
  token: Address;
  payee: Address;
  /** Inclusive range, by the block the transfers were mined in (`charge_payments.blockNumber`). */
  fromBlock: bigint;
  toBlock: bigint;
  /** Blocks per getLogs call (RPC providers cap the range). */
  chunkBlocks?: bigint;
}

export interface AmountMismatch {
  txHash: Hex;
  recorded: bigint;
  onChain: bigint;
}

/** One direction of money compared by transaction hash. */
export interface TransferComparison {
  recordedTotal: bigint;
  onChainTotal: bigint;
  /** On-chain transfers the ledger does not know. */
  missingInLedger: Hex[];
  /** Recorded transfers the chain does not show in the range. */
  missingOnChain: Hex[];
  amountMismatches: AmountMismatch[];
  ok: boolean;
}

export interface ChargeReconciliation extends TransferComparison {
  /** Payee → payer transfers: confirmed refunds vs on-chain transfers from the payee (fees excluded). */
  refunds: TransferComparison;
}

export async function reconcileCharges(input: ReconcileChargesInput): Promise<ChargeReconciliation> {
  const payee = input.payee.toLowerCase() as Address;
  const token = input.token.toLowerCase() as Address;
  const range = [input.fromBlock.toString(), input.toBlock.toString()];
  const [charges, refunds, received, sent] = await Promise.all([
    input.db.query<{ txHash: string; amount: string }>(
      `SELECT lower("txHash") AS "txHash", "amount"::text AS "amount" FROM "charge_payments"
       WHERE "status"::text = ANY($1::text[]) AND lower("recipient") = $2 AND lower("token") = $3
         AND "blockNumber" BETWEEN $4::bigint AND $5::bigint`,
      [MONEY_ARRIVED_STATUSES, payee, token, ...range],
    ),
    input.db.query<{ txHash: string; amount: string }>(
      `SELECT lower(s."txHash") AS "txHash", s."amount"::text AS "amount" FROM "settlements" s
       JOIN "charge_payments" p ON p."id" = s."chargePaymentId"
       WHERE s."kind" = 'refund' AND s."status" = 'confirmed' AND lower(p."recipient") = $1 AND lower(p."token") = $2
         AND s."blockNumber" BETWEEN $3::bigint AND $4::bigint`,
      [payee, token, ...range],
    ),
    transfers(input, token, { to: payee }),
    // The refund transaction's own fee is a second transfer from the payee in the same transaction.
    transfers(input, token, { from: payee }, (to) => to !== TEMPO_FEE_MANAGER),
  ]);
  const chargeSide = compare(sumByHash(charges.rows), received);
  const refundSide = compare(sumByHash(refunds.rows), sent);
  return { ...chargeSide, ok: chargeSide.ok && refundSide.ok, refunds: refundSide };
}

/** The token's Transfer logs matching `args` (and `recipient`) in the range, summed per transaction (read in chunks). */
async function transfers(
  input: ReconcileChargesInput,
  token: Address,
  args: { from: Address } | { to: Address },
  recipient: (to: Address) => boolean = () => true,
): Promise<Map<Hex, bigint>> {
  const step = input.chunkBlocks ?? DEFAULT_CHUNK_BLOCKS;
  const byHash = new Map<Hex, bigint>();
  for (let from = input.fromBlock; from <= input.toBlock; from += step) {
    const to = from + step - 1n < input.toBlock ? from + step - 1n : input.toBlock;
    const logs = await input.publicClient.getLogs({ address: token, event: transferEvent, args, fromBlock: from, toBlock: to });
    for (const log of logs) {
      if (!log.transactionHash || log.args.amount === undefined || !log.args.to) continue;
      if (!recipient(log.args.to.toLowerCase() as Address)) continue;
      const hash = log.transactionHash.toLowerCase() as Hex;
      byHash.set(hash, (byHash.get(hash) ?? 0n) + log.args.amount);
    }
  }
  return byHash;
}

function sumByHash(rows: { txHash: string; amount: string }[]): Map<Hex, bigint> {
  const byHash = new Map<Hex, bigint>();
  for (const row of rows) byHash.set(row.txHash as Hex, (byHash.get(row.txHash as Hex) ?? 0n) + BigInt(row.amount));
  return byHash;
}

function compare(recorded: Map<Hex, bigint>, onChain: Map<Hex, bigint>): TransferComparison {
  const total = (m: Map<Hex, bigint>) => [...m.values()].reduce((s, a) => s + a, 0n);
  const missingInLedger = [...onChain.keys()].filter((h) => !recorded.has(h)).sort();
  const missingOnChain = [...recorded.keys()].filter((h) => !onChain.has(h)).sort();
  const amountMismatches = [...recorded]
    .filter(([hash, amount]) => onChain.has(hash) && onChain.get(hash) !== amount)
    .map(([txHash, amount]) => ({ txHash, recorded: amount, onChain: onChain.get(txHash)! }));
  const recordedTotal = total(recorded);
  const onChainTotal = total(onChain);
  return {
    recordedTotal,
    onChainTotal,
    missingInLedger,
    missingOnChain,
    amountMismatches,
    ok: recordedTotal === onChainTotal && !missingInLedger.length && !missingOnChain.length && !amountMismatches.length,
  };
}
