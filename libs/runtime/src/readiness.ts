import type { Config } from "@worldrouter/config";
import type { ReadinessCheck } from "@worldrouter/observability";
import { Redis } from "ioredis";
import pg from "pg";
import { redisOptions } from "./redis.js";

/** Readiness probes of the shared infrastructure; one small connection each, reused across probes. */
export function infrastructureChecks(config: Config): { checks: Record<string, ReadinessCheck>; close(): Promise<void> } {
  let redis: Redis | undefined;
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: 1,
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: 2_000,
    statement_timeout: 2_000,
    query_timeout: 2_000,
  });
  return {
    checks: {
      redis: async () => {
        redis ??= new Redis({ ...redisOptions(config.redis), lazyConnect: true, maxRetriesPerRequest: 1 });
        if (redis.status === "wait") await redis.connect();
        await redis.ping();
      },
      postgres: async () => {
        await pool.query("SELECT 1");
      },
    },
    async close() {
      redis?.disconnect();
      await pool.end();
    },
  };
}
