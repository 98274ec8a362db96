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

export function createPgPool(databaseUrl: string, options: { poolSize?: number } = {}): PgPool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: options.poolSize ?? 10 });
  // An idle connection dropped by the server is removed from the pool and replaced on demand; without a
  // listener the event would crash the process.
  pool.on("error", () => {});
  return pool;
}

/** A client on its own pool (closed by `$disconnect`), or on a shared one the caller closes. */
export function createPrismaClient(database: string | PgPool, options: { poolSize?: number } = {}): PrismaClient {
  const adapter =
    typeof database === "string" ? new PrismaPg({ connectionString: database, max: options.poolSize ?? 10 }) : new PrismaPg(database);
  return new PrismaClient({ adapter });
}

/** A client or an interactive transaction: repositories accept either so callers choose the boundary. */
export type Db = Omit<PrismaClient, "$connect" | "$disconnect" | "$on" | "$transaction" | "$extends">;
