/**
 * Per-run isolation for integration tests: a throwaway Postgres database (migrated) and a Redis
 * namespace, both unique to this run, so parallel runs and reruns never collide. Dropped at teardown.
 * Only projects that opt in (`projectConfig(url, { infra: true })`) get them.
 */
import { randomBytes } from "node:crypto";
import { deleteRedisNamespace } from "@worldrouter/runtime";
import pg from "pg";
import { migrate } from "../prisma/migrate.mjs";

const adminUrl = process.env.TEST_POSTGRES_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export default async function setup() {
  const run = `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
  const database = `wr_test_${run}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${database}"`);
  await admin.end();
  const databaseUrl = new URL(adminUrl);
  databaseUrl.pathname = `/${database}`;
  await migrate(databaseUrl.toString(), () => {});

  process.env.DATABASE_URL = databaseUrl.toString();
  process.env.REDIS_URL = redisUrl;
  process.env.REDIS_NAMESPACE = `wrtest-${run}`;

  return async () => {
    await deleteRedisNamespace(redisUrl, `wrtest-${run}`);
    const cleanup = new pg.Client({ connectionString: adminUrl });
    await cleanup.connect();
    await cleanup.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await cleanup.end();
  };
}
