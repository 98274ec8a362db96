import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgPool, createPrismaClient } from "./index.js";

/** A TCP server that accepts and never answers: a Postgres that hangs. */
let silent: Server;
let silentUrl: string;
const sockets: Socket[] = [];
beforeAll(async () => {
  silent = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  silentUrl = `postgresql://postgres@127.0.0.1:${(silent.address() as { port: number }).port}/none`;
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
});

describe("Postgres timeouts (DATABASE_CONNECT_TIMEOUT_MS, DATABASE_STATEMENT_TIMEOUT_MS)", () => {
  it("the server cancels a statement running past the statement timeout; shorter ones run", async () => {
    const pool = createPgPool(process.env.DATABASE_URL!, { statementTimeoutMs: 300 });
    try {
      await expect(pool.query("SELECT pg_sleep(0.05)")).resolves.toBeDefined();
      await expect(pool.query("SELECT pg_sleep(3)")).rejects.toThrow(/canceling statement due to statement timeout/);
      // The connection is still good afterwards.
      expect((await pool.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  it("Prisma on its own pool gets the same statement timeout", async () => {
    const db = createPrismaClient(process.env.DATABASE_URL!, { statementTimeoutMs: 300 });
    try {
      await expect(db.$queryRaw`SELECT pg_sleep(3)`).rejects.toThrow(/statement timeout/);
    } finally {
      await db.$disconnect();
    }
  });

  it("a server that accepts but never answers fails the call after the connect timeout instead of hanging", async () => {
    const pool = createPgPool(silentUrl, { connectTimeoutMs: 300, statementTimeoutMs: 300 });
    const started = Date.now();
    try {
      await expect(pool.query("SELECT 1")).rejects.toThrow(/timeout/i);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await pool.end();
    }
  });
});
