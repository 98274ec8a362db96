import { Inject, Injectable, type OnApplicationBootstrap } from "@nestjs/common";
import { createTempoClients } from "@worldrouter/chain";
import type { Config } from "@worldrouter/config";
import { PgPool } from "@worldrouter/db";
import { observedGauge, type Logger } from "@worldrouter/observability";
import { reconcileCharges, type ChargeReconciliation, type TransferComparison } from "@worldrouter/reconciliation";
import { CONFIG, JobQueues, Leases, LOGGER, METRICS, type Lease } from "@worldrouter/runtime";
import type { Registry } from "prom-client";
import type { Address } from "viem";

// Blocks left behind the head: a charge is recorded (and a refund confirmed) a few seconds after its block, so the
// newest blocks would show transfers the ledger is about to know. Anything still missing after this is a mismatch.
const LAG_BLOCKS = 30n;
// One pass reads at most this many blocks (a few getLogs calls); a backlog is caught up over the next ticks.
const MAX_BLOCKS_PER_PASS = 20_000n;
const LEASE_TTL_MS = 5 * 60_000;

export interface ReconcilePass {
  stream: string;
  fromBlock: bigint;
  toBlock: bigint;
  opened: number;
  resolved: number;
}

type Side = "charge" | "refund";

/**
 * Continuous reconciliation (invariant "the ledger equals the chain"): every RECONCILE_EVERY_SECONDS one settlement
 * replica (a BullMQ job scheduler, one job per tick, plus a lease) compares the next block range of the payee's
 * Transfer logs with the ledger (`reconcileCharges`), from a cursor persisted per stream, so a restart resumes where
 * the last pass stopped. Each disagreement becomes a `reconciliation_mismatches` row (metric
 * `wr_reconciliation_mismatches_open`, ops API, dashboard banner); open ones are checked again on every pass and
 * closed when ledger and chain agree (a late record, a repaired row). Read-only towards the money: it never repairs.
 */
@Injectable()
export class ReconcileChainUseCase implements OnApplicationBootstrap {
  private readonly lease: Lease;
  private readonly publicClient;
  readonly stream: string;

  constructor(
    @Inject(PgPool) private readonly pool: PgPool,
    @Inject(JobQueues) private readonly queues: JobQueues,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(Leases) leases: Leases,
    @Inject(METRICS) metrics: Registry,
  ) {
    this.lease = leases.lease("chain-reconcile", LEASE_TTL_MS);
    this.publicClient = createTempoClients({
      rpcUrl: config.chain.rpcUrl,
      chainId: config.chain.chainId,
      feeToken: config.chain.token,
      timeoutMs: config.chain.rpcTimeoutMs,
    }).publicClient;
    this.stream = `charges:${config.chain.chainId}:${config.chain.payee}:${config.chain.token}`;
    observedGauge(
      metrics,
      "wr_reconciliation_mismatches_open",
      "Disagreements between the ledger and the chain not resolved yet (reconciliation_mismatches): alert on > 0",
      async () =>
        (await this.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "reconciliation_mismatches" WHERE "resolvedAt" IS NULL`))
          .rows[0]!.n,
    );
    observedGauge(metrics, "wr_reconciliation_last_block", "Last block the ledger was reconciled up to (payee stream)", async () => {
      const { rows } = await this.pool.query<{ b: string }>(
        `SELECT "lastBlock"::text AS b FROM "reconciliation_cursors" WHERE "stream" = $1`,
        [this.stream],
      );
      return rows[0] ? Number(rows[0].b) : 0;
    });
  }

  async onApplicationBootstrap() {
    if (this.config.ops.reconcileEverySeconds === 0) {
      await this.queues.queue("settlement").removeJobScheduler("chain.reconcile");
      return;
    }
    await this.queues.queue("settlement").upsertJobScheduler(
      "chain.reconcile",
      { every: this.config.ops.reconcileEverySeconds * 1000 },
      // A failed tick is not retried: the next one reads the same range again (the cursor did not move).
      {
        name: "settlement",
        data: { kind: "chain.reconcile", reference: "payee-transfers", requestedAt: 0 },
        opts: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
      },
    );
  }

  /** The scheduled tick: one pass, skipped while another replica runs one. */
  async reconcileExclusively(): Promise<ReconcilePass | null> {
    const grant = await this.lease.tryAcquire();
    if (!grant) return null;
    try {
      return await this.reconcile();
    } finally {
      await grant.release().catch(() => false);
    }
  }

  /** One pass: re-check open mismatches, then the next range after the cursor; the cursor moves with its rows. */
  async reconcile(): Promise<ReconcilePass | null> {
    const resolved = await this.recheckOpen();
    const head = await this.publicClient.getBlockNumber();
    const safe = head - LAG_BLOCKS;
    const cursor = await this.cursor(safe);
    const fromBlock = cursor + 1n;
    if (fromBlock > safe) return { stream: this.stream, fromBlock, toBlock: cursor, opened: 0, resolved };
    const toBlock = fromBlock + MAX_BLOCKS_PER_PASS - 1n < safe ? fromBlock + MAX_BLOCKS_PER_PASS - 1n : safe;
    const result = await this.compare(fromBlock, toBlock);
    const opened = await this.record(result, fromBlock, toBlock, cursor);
    if (opened)
      this.logger.error(
        { stream: this.stream, fromBlock: String(fromBlock), toBlock: String(toBlock), opened },
        "ledger and chain disagree",
      );
    return { stream: this.stream, fromBlock, toBlock, opened, resolved };
  }

  private compare(fromBlock: bigint, toBlock: bigint): Promise<ChargeReconciliation> {
    return reconcileCharges({
      db: this.pool,
      publicClient: this.publicClient,
      token: this.config.chain.token as Address,
      payee: this.config.chain.payee as Address,
      fromBlock,
      toBlock,
    });
  }

  /**
   * Where a stream starts the first time: just before the oldest charge the ledger holds for this payee (so history
   * is checked once), or the safe head when the ledger has none (a chain's history before us is not ours to check).
   */
  private async cursor(safeHead: bigint): Promise<bigint> {
    const { rows } = await this.pool.query<{ last: string }>(
      `SELECT "lastBlock"::text AS "last" FROM "reconciliation_cursors" WHERE "stream" = $1`,
      [this.stream],
    );
    if (rows[0]) return BigInt(rows[0].last);
    const oldest = await this.pool.query<{ first: string | null }>(
      `SELECT min("blockNumber")::text AS "first" FROM "charge_payments" WHERE "recipient" = $1 AND "token" = $2 AND "chainId" = $3`,
      [this.config.chain.payee, this.config.chain.token, this.config.chain.chainId],
    );
    const first = oldest.rows[0]?.first;
    const start = first ? BigInt(first) - 1n : safeHead > 0n ? safeHead : 0n;
    await this.pool.query(
      `INSERT INTO "reconciliation_cursors" ("stream", "chainId", "lastBlock") VALUES ($1, $2, $3) ON CONFLICT ("stream") DO NOTHING`,
      [this.stream, this.config.chain.chainId, String(start)],
    );
    const stored = await this.pool.query<{ last: string }>(
      `SELECT "lastBlock"::text AS "last" FROM "reconciliation_cursors" WHERE "stream" = $1`,
      [this.stream],
    );
    return BigInt(stored.rows[0]!.last);
  }

  /** Mismatch rows of a pass and the cursor's move, in one transaction; the cursor moves only from where this pass read it. */
  private async record(result: ChargeReconciliation, fromBlock: bigint, toBlock: bigint, cursor: bigint): Promise<number> {
    const rows = [...mismatchRows("charge", result), ...mismatchRows("refund", result.refunds)];
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const moved = await client.query(
        `UPDATE "reconciliation_cursors" SET "lastBlock" = $2, "checkedAt" = now() WHERE "stream" = $1 AND "lastBlock" = $3`,
        [this.stream, String(toBlock), String(cursor)],
      );
      if (moved.rowCount !== 1) {
        await client.query("ROLLBACK");
        return 0; // another pass moved it meanwhile (a re-run tick): its rows stand
      }
      for (const row of rows) {
        await client.query(
          `INSERT INTO "reconciliation_mismatches" ("stream", "kind", "txHash", "recorded", "onChain", "fromBlock", "toBlock")
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT ("stream", "kind", "txHash") DO UPDATE SET "resolvedAt" = NULL, "recorded" = EXCLUDED."recorded", "onChain" = EXCLUDED."onChain"`,
          [this.stream, row.kind, row.txHash, row.recorded, row.onChain, String(fromBlock), String(toBlock)],
        );
      }
      await client.query("COMMIT");
      return rows.length;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** Open mismatches whose range now agrees on their transaction are resolved. */
  private async recheckOpen(): Promise<number> {
    const { rows } = await this.pool.query<{ id: string; kind: string; txHash: string; fromBlock: string; toBlock: string }>(
      `SELECT "id"::text, "kind", "txHash", "fromBlock"::text AS "fromBlock", "toBlock"::text AS "toBlock"
       FROM "reconciliation_mismatches" WHERE "stream" = $1 AND "resolvedAt" IS NULL ORDER BY "fromBlock" LIMIT 100`,
      [this.stream],
    );
    let resolved = 0;
    const ranges = new Map<string, typeof rows>();
    for (const row of rows) ranges.set(`${row.fromBlock}-${row.toBlock}`, [...(ranges.get(`${row.fromBlock}-${row.toBlock}`) ?? []), row]);
    for (const open of ranges.values()) {
      const result = await this.compare(BigInt(open[0]!.fromBlock), BigInt(open[0]!.toBlock));
      const still = new Set(
        [...mismatchRows("charge", result), ...mismatchRows("refund", result.refunds)].map((m) => `${m.kind}:${m.txHash}`),
      );
      const agreed = open.filter((m) => !still.has(`${m.kind}:${m.txHash}`)).map((m) => m.id);
      if (!agreed.length) continue;
      const done = await this.pool.query(
        `UPDATE "reconciliation_mismatches" SET "resolvedAt" = now() WHERE "id" = ANY($1::bigint[]) AND "resolvedAt" IS NULL`,
        [agreed],
      );
      resolved += done.rowCount ?? 0;
    }
    return resolved;
  }
}

/** One row per transaction the two sides disagree on: `<side>_missing_in_ledger`, `<side>_missing_on_chain`, `<side>_amount`. */
function mismatchRows(side: Side, comparison: TransferComparison) {
  return [
    ...comparison.missingInLedger.map((txHash) => ({
      kind: `${side}_missing_in_ledger`,
      txHash,
      recorded: null,
      onChain: null as string | null,
    })),
    ...comparison.missingOnChain.map((txHash) => ({
      kind: `${side}_missing_on_chain`,
      txHash,
      recorded: null,
      onChain: null as string | null,
    })),
    ...comparison.amountMismatches.map((m) => ({
      kind: `${side}_amount`,
      txHash: m.txHash,
      recorded: m.recorded.toString() as string | null,
      onChain: m.onChain.toString() as string | null,
    })),
  ];
}
