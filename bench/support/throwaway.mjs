/**
 * A benchmark run's own stores: a database `wr_bench_<run>` on DATABASE_URL's server, a Redis namespace
 * `wrbench-<run>` and a scratch directory, all removed by `remove()`.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { deleteRedisNamespace } from "@worldrouter/runtime";

export function throwawayStores() {
  const run = `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
  const adminUrl = new URL(process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres");
  const databaseUrl = new URL(adminUrl);
  databaseUrl.pathname = `/wr_bench_${run}`;
  adminUrl.pathname = "/postgres";
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const namespace = `wrbench-${run}`;
  const scratch = mkdtempSync(join(tmpdir(), "wr-bench-"));
  return {
    run,
    /** The server's maintenance database (for pg_stat_database and the drop). */
    adminUrl,
    databaseUrl,
    redisUrl,
    namespace,
    scratch,
    async remove() {
      await deleteRedisNamespace(redisUrl, namespace);
      const admin = new pg.Client({ connectionString: adminUrl.toString() });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${databaseUrl.pathname.slice(1)}" WITH (FORCE)`).finally(() => admin.end());
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
