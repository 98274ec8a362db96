import type { Db } from "./client.js";

/**
 * Claims `key` for `consumer` exactly once (unique key + ON CONFLICT, never read-then-write). Call it
 * inside the same transaction as the effect, so the claim and the effect commit or roll back together.
 */
export async function claimEvent(db: Db, consumer: string, key: string): Promise<boolean> {
  const rows = await db.$queryRaw<{ key: string }[]>`
    INSERT INTO "processed_events" ("consumer", "key") VALUES (${consumer}, ${key})
    ON CONFLICT DO NOTHING RETURNING "key"`;
  return rows.length === 1;
}
