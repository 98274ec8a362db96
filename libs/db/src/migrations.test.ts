import pg from "pg";
import { describe, expect, it } from "vitest";
import { ensureDatabase, migrate } from "../../../prisma/migrate.mjs";

describe("migrations", () => {
  it("apply on an empty database, are idempotent and run once under concurrency", async () => {
    const url = new URL(process.env.DATABASE_URL!);
    url.pathname = `/${url.pathname.slice(1)}_fresh`;
    await ensureDatabase(url.toString());
    try {
      const runs: { applied: number }[] = await Promise.all([1, 2, 3].map(() => migrate(url.toString(), () => {})));
      expect(runs.map((r) => r.applied).sort()).toEqual([0, 0, runs.reduce((s, r) => s + r.applied, 0)]);
      expect((await migrate(url.toString(), () => {})).applied).toBe(0);
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      const { rows } = await client.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`);
      await client.end();
      expect(rows.map((r) => r.table_name)).toEqual([
        "_prisma_migrations",
        "channels",
        "charge_payments",
        "inference_requests",
        "ledger_entries",
        "ledger_transactions",
        "ops_actions",
        "processed_events",
        "reconciliation_cursors",
        "reconciliation_mismatches",
        "settlements",
        "vouchers",
      ]);
    } finally {
      const admin = new URL(url);
      admin.pathname = "/postgres";
      const client = new pg.Client({ connectionString: admin.toString() });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${url.pathname.slice(1)}" WITH (FORCE)`);
      await client.end();
    }
  });

  it("apply to several databases at once: the cluster-wide role they all alter is not a failure", async () => {
    const urls = [1, 2, 3, 4].map((i) => {
      const url = new URL(process.env.DATABASE_URL!);
      url.pathname = `/${url.pathname.slice(1)}_parallel_${i}`;
      return url.toString();
    });
    try {
      await Promise.all(urls.map((url) => ensureDatabase(url)));
      const runs = await Promise.allSettled(urls.map((url) => migrate(url, () => {}, { opsReaderPassword: "reader" })));
      expect(runs.map((r) => (r.status === "rejected" ? String(r.reason) : r.status))).toEqual(Array(4).fill("fulfilled"));
    } finally {
      const admin = new URL(urls[0]!);
      admin.pathname = "/postgres";
      const client = new pg.Client({ connectionString: admin.toString() });
      await client.connect();
      for (const url of urls) await client.query(`DROP DATABASE IF EXISTS "${new URL(url).pathname.slice(1)}" WITH (FORCE)`);
      await client.end();
    }
  });
});
