import { Inject, Injectable } from "@nestjs/common";
import { OpsReader } from "./ops-reader.js";
import { encodeCursor, listStatement, type ListName, type ListQuery, type Row } from "./report-lists.js";

export type Granularity = "minute" | "hour" | "day";

export interface Page {
  items: Row[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

// Reads only `reporting.*` views, through the read-only role. Money columns are NUMERIC and come back as decimal
// strings (token base units), never floats.
const SERIES = `
SELECT date_trunc($3, "created_at") AS "bucket", count(*)::int AS "requests", count(*) FILTER (WHERE "billed")::int AS "billed",
  COALESCE(sum("charged_cost") FILTER (WHERE "billed"), 0)::text AS "revenue",
  COALESCE(sum("estimated_cost") FILTER (WHERE "billed"), 0)::text AS "estimated",
  COALESCE(sum("actual_cost") FILTER (WHERE "billed"), 0)::text AS "actual"
FROM reporting.requests WHERE "created_at" >= $1 AND "created_at" < $2
GROUP BY 1 ORDER BY 1`;

const BY_MODEL = `
SELECT "model", "provider", count(*)::int AS "requests", count(*) FILTER (WHERE "billed")::int AS "billed",
  COALESCE(sum("charged_cost") FILTER (WHERE "billed"), 0)::text AS "revenue",
  COALESCE(sum("estimated_cost") FILTER (WHERE "billed"), 0)::text AS "estimated",
  COALESCE(sum("actual_cost") FILTER (WHERE "billed"), 0)::text AS "actual",
  COALESCE(sum("charged_cost" - "actual_cost") FILTER (WHERE "billed"), 0)::text AS "margin"
FROM reporting.requests WHERE "created_at" >= $1 AND "created_at" < $2
GROUP BY 1, 2 ORDER BY sum("charged_cost") FILTER (WHERE "billed") DESC NULLS LAST, 1 LIMIT 50`;

const TOP_PAYERS = `
SELECT "payer", count(*)::int AS "requests", COALESCE(sum("charged_cost") FILTER (WHERE "billed"), 0)::text AS "revenue"
FROM reporting.requests WHERE "created_at" >= $1 AND "created_at" < $2
GROUP BY 1 ORDER BY sum("charged_cost") FILTER (WHERE "billed") DESC NULLS LAST, 1 LIMIT 10`;

const PAYERS = `SELECT count(DISTINCT "payer")::int AS "payers" FROM reporting.requests WHERE "created_at" >= $1 AND "created_at" < $2`;

const PAYMENTS_BY_STATUS = `
SELECT "status", count(*)::int AS "count", COALESCE(sum("amount"), 0)::text AS "amount"
FROM reporting.payments WHERE "created_at" >= $1 AND "created_at" < $2 GROUP BY 1 ORDER BY 1`;

// Refunds and settlements that need attention are shown whenever they happened, not only inside the range.
const REFUNDS_BY_STATUS = `
SELECT "status", count(*)::int AS "count", COALESCE(sum("amount"), 0)::text AS "amount"
FROM reporting.refunds WHERE "created_at" >= $1 AND "created_at" < $2 GROUP BY 1 ORDER BY 1`;

const STUCK_REFUNDS = `
SELECT "id", "created_at", "payment_id", "payer", "amount", "status", "tx_hash", "error" FROM reporting.refunds
WHERE "status" IN ('failed', 'pending', 'queued', 'submitted') ORDER BY ("status" = 'failed') DESC, "created_at" LIMIT 50`;

const SETTLEMENTS_BY_STATUS = `
SELECT "kind", "status", count(*)::int AS "count", COALESCE(sum("amount"), 0)::text AS "amount"
FROM reporting.settlements WHERE "created_at" >= $1 AND "created_at" < $2 GROUP BY 1, 2 ORDER BY 1, 2`;

const UNFINISHED_SETTLEMENTS = `
SELECT "id", "created_at", "kind", "status", "amount", "tx_hash", "error" FROM reporting.settlements
WHERE "status" IN ('pending', 'submitted', 'failed') ORDER BY "created_at" LIMIT 50`;

const CHANNELS = `
SELECT "status", count(*)::int AS "count", COALESCE(sum("deposit"), 0)::text AS "deposits",
  COALESCE(sum("accepted"), 0)::text AS "accepted", COALESCE(sum("spent"), 0)::text AS "spent",
  COALESCE(sum("settled"), 0)::text AS "settled", COALESCE(sum("exposure"), 0)::text AS "exposure"
FROM reporting.channels GROUP BY 1 ORDER BY 1`;

const RECONCILIATION = `
SELECT (SELECT count(*)::int FROM reporting.reconciliation_mismatches WHERE "resolved_at" IS NULL) AS "openMismatches",
  (SELECT json_agg(c ORDER BY c."stream") FROM reporting.reconciliation_cursors c) AS "cursors"`;

const PAYER_TOTALS = `
SELECT count(*)::int AS "requests", COALESCE(sum("charged_cost") FILTER (WHERE "billed"), 0)::text AS "spent",
  COALESCE(sum("actual_cost") FILTER (WHERE "billed"), 0)::text AS "actual", min("created_at") AS "firstSeen", max("created_at") AS "lastSeen"
FROM reporting.requests WHERE "payer" = $1`;

const PAYER_PAYMENTS = `
SELECT "status", count(*)::int AS "count", COALESCE(sum("amount"), 0)::text AS "amount" FROM reporting.payments WHERE "payer" = $1 GROUP BY 1 ORDER BY 1`;

const PAYER_BALANCE = `SELECT COALESCE(sum("balance"), 0)::text AS "prepaid" FROM reporting.account_balances WHERE "account" = $1`;

/** Money sums and lists over the ledger for the ops API and dashboard. */
@Injectable()
export class LedgerReportsRepository {
  constructor(@Inject(OpsReader) private readonly reader: OpsReader) {}

  async summary(from: Date, to: Date, granularity: Granularity) {
    const range = [from, to];
    const [series, byModel, topPayers, payers, payments, refunds, stuckRefunds, settlements, unfinished, channels, reconciliation] =
      await Promise.all([
        this.rows(SERIES, [...range, granularity]),
        this.rows(BY_MODEL, range),
        this.rows(TOP_PAYERS, range),
        this.rows(PAYERS, range),
        this.rows(PAYMENTS_BY_STATUS, range),
        this.rows(REFUNDS_BY_STATUS, range),
        this.rows(STUCK_REFUNDS),
        this.rows(SETTLEMENTS_BY_STATUS, range),
        this.rows(UNFINISHED_SETTLEMENTS),
        this.rows(CHANNELS),
        this.rows(RECONCILIATION),
      ]);
    const sum = (key: string) => series.reduce((s, r) => s + BigInt(r[key] as string), 0n).toString();
    const revenue = sum("revenue");
    const actual = sum("actual");
    const estimated = sum("estimated");
    const exposure = channels.reduce((s, c) => (c.status === "closed" ? s : s + BigInt(c.exposure as string)), 0n);
    const recon = reconciliation[0] as { openMismatches: number; cursors: unknown };
    return {
      from: from.toISOString(),
      to: to.toISOString(),
      granularity,
      totals: {
        requests: series.reduce((s, r) => s + (r.requests as number), 0),
        billedRequests: series.reduce((s, r) => s + (r.billed as number), 0),
        revenue,
        estimatedCost: estimated,
        actualCost: actual,
        // What the charge kept above actual usage (the price overhead), and the estimate's error against actual.
        margin: (BigInt(revenue) - BigInt(actual)).toString(),
        variance: (BigInt(estimated) - BigInt(actual)).toString(),
        payers: payers[0]!.payers as number,
      },
      series,
      byModel,
      topPayers,
      payments,
      refunds: { byStatus: refunds, stuck: stuckRefunds },
      settlements: { byStatus: settlements, unfinished },
      channels: { byStatus: channels, openExposure: exposure.toString() },
      reconciliation: { openMismatches: recon.openMismatches, cursors: recon.cursors ?? [] },
    };
  }

  async page(list: ListName, query: ListQuery, after?: [string, string]): Promise<Page> {
    const statement = listStatement(list, query, query.limit, after);
    const items = await this.rows(statement.text, statement.values);
    const last = items.at(-1);
    const nextCursor = last && items.length === query.limit ? encodeCursor(last.created_at as string, String(last.id)) : null;
    return { items, nextCursor };
  }

  /** Every row of a list (for CSV), page by page, up to `max` rows. */
  async *allRows(list: ListName, query: ListQuery, max: number): AsyncGenerator<Row[]> {
    let after: [string, string] | undefined;
    let seen = 0;
    const pageQuery = { ...query, limit: 1000 };
    while (seen < max) {
      const page = await this.page(list, pageQuery, after);
      if (page.items.length) yield page.items;
      seen += page.items.length;
      if (!page.nextCursor) return;
      const last = page.items.at(-1)!;
      after = [last.created_at as string, String(last.id)];
    }
  }

  async payer(address: string, payerAccount: string) {
    const [totals, payments, balance] = await Promise.all([
      this.rows(PAYER_TOTALS, [address]),
      this.rows(PAYER_PAYMENTS, [address]),
      this.rows(PAYER_BALANCE, [payerAccount]),
    ]);
    const t = totals[0]!;
    if (!t.requests && !payments.length) return null;
    return { payer: address, ...t, payments, prepaidBalance: balance[0]!.prepaid };
  }

  /** Rows with timestamps as ISO strings (JSON and CSV show the same text). */
  private async rows(text: string, values: unknown[] = []): Promise<Row[]> {
    const { rows } = await this.reader.query<Record<string, unknown>>(text, values);
    return rows.map((row) => {
      const out: Row = {};
      for (const [key, value] of Object.entries(row)) out[key] = value instanceof Date ? value.toISOString() : (value as Row[string]);
      return out;
    });
  }
}
