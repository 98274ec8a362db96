import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "./generated/prisma/client.js";

export { Prisma, PrismaClient } from "./generated/prisma/client.js";
export type * from "./generated/prisma/models.js";

/**
 * The Postgres pool under Prisma, also an injection token. Hot-path writes use it directly: one prepared
 * statement per event, none of Prisma's per-query compilation and no interactive-transaction round trips.
 */
export const PgPool = pg.Pool;
export type PgPool = pg.Pool;
/** A connection taken from the pool (an explicit transaction runs on one). */
export type PgClient = pg.PoolClient;

export interface PoolOptions {
  poolSize?: number;
  /** Longest wait for a connection (DATABASE_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /** Postgres cancels a statement running longer, and the client stops waiting then too (DATABASE_STATEMENT_TIMEOUT_MS). */
  statementTimeoutMs?: number;
}

/** pg pool settings: every service call bounded by a connect and a statement timeout when they are given. */
export function poolConfig(databaseUrl: string, options: PoolOptions = {}): pg.PoolConfig {
  return {
    connectionString: databaseUrl,
    max: options.poolSize ?? 10,
    ...(options.connectTimeoutMs ? { connectionTimeoutMillis: options.connectTimeoutMs } : {}),
    // statement_timeout is enforced by the server; query_timeout covers a server that stopped answering at all.
    ...(options.statementTimeoutMs
      ? { statement_timeout: options.statementTimeoutMs, query_timeout: options.statementTimeoutMs + QUERY_TIMEOUT_GRACE_MS }
      : {}),
  };
}

// The server's statement_timeout fires first and names the statement; the client gives up a little later.
const QUERY_TIMEOUT_GRACE_MS = 1_000;

export function createPgPool(databaseUrl: string, options: PoolOptions = {}): PgPool {
  const pool = new pg.Pool(poolConfig(databaseUrl, options));
  // An idle connection dropped by the server is removed from the pool and replaced on demand; without a
  // listener the event would crash the process.
  pool.on("error", () => {});
  return pool;
}

/** A client on its own pool (closed by `$disconnect`), or on a shared one the caller closes. */
export function createPrismaClient(database: string | PgPool, options: PoolOptions = {}): PrismaClient {
  const adapter = typeof database === "string" ? new PrismaPg(poolConfig(database, options)) : new PrismaPg(database);
  return new PrismaClient({ adapter });
}

/** A client or an interactive transaction: repositories accept either so callers choose the boundary. */
export type Db = Omit<PrismaClient, "$connect" | "$disconnect" | "$on" | "$transaction" | "$extends">;
