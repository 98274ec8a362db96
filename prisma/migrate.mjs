// Applies prisma/migrations/*/migration.sql in order, offline (Prisma's schema-engine binary cannot be
// downloaded here). Same folder layout and `_prisma_migrations` bookkeeping as `prisma migrate deploy`;
// idempotent, one transaction per file, one migrator at a time, edited files refused.
import { createHash, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import pg from "pg";

export async function migrate(databaseUrl, log = console.log, options = {}) {
  const dir = new URL("./migrations/", import.meta.url);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await db.query("SET client_min_messages = warning");
    await db.query("SELECT pg_advisory_lock(72707369)"); // Prisma's lock id
    await db.query(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (id VARCHAR(36) PRIMARY KEY,
      checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ, migration_name VARCHAR(255) NOT NULL,
      logs TEXT, rolled_back_at TIMESTAMPTZ, started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
      applied_steps_count INTEGER NOT NULL DEFAULT 0)`);
    const { rows } = await db.query(`SELECT migration_name, checksum FROM "_prisma_migrations"
      WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`);
    const done = new Map(rows.map((r) => [r.migration_name, r.checksum]));
    const names = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    let applied = 0;
    for (const name of names) {
      const sql = await readFile(new URL(`${name}/migration.sql`, dir), "utf8");
      const sum = createHash("sha256").update(sql).digest("hex");
      if (done.has(name)) {
        if (done.get(name) === sum) continue;
        throw new Error(`${name}: edited after it was applied (checksum mismatch)`);
      }
      await retryOnSharedCatalogRace(async () => {
        await db.query("BEGIN");
        try {
          await db.query(sql);
          await db.query(
            `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
            VALUES ($1, $2, $3, now(), 1)`,
            [randomUUID(), sum, name],
          );
          await db.query("COMMIT");
        } catch (err) {
          await db.query("ROLLBACK");
          if (isSharedCatalogRace(err)) throw err;
          throw new Error(`${name} failed: ${err.message}`, { cause: err });
        }
      });
      applied++;
      log(`applied ${name}`);
    }
    log(`migrations up to date (${names.length} total, ${applied} applied now)`);
    const readerPassword = options.opsReaderPassword ?? process.env.OPS_READER_PASSWORD;
    if (readerPassword) await retryOnSharedCatalogRace(() => setOpsReaderPassword(db, readerPassword));
    return { total: names.length, applied };
  } finally {
    await db.end();
  }
}

/**
 * The migration lock is per database, but roles are per cluster: two databases migrated at once (parallel test files,
 * two environments on one server) may update the same role row (`ALTER ROLE`), and the loser gets "tuple concurrently
 * updated". Nothing was applied (the transaction rolled back): run it again after the winner committed.
 */
async function retryOnSharedCatalogRace(run, attempts = 10) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (!isSharedCatalogRace(err) || attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}

const isSharedCatalogRace = (err) => err?.code === "XX000" && /tuple concurrently updated/.test(err.message);

/**
 * The ops API's read-only role (created by a migration, without a password) gets its password from the environment,
 * so it never sits in a migration file. ALTER ROLE takes no bind parameters: the literal is quoted by pg.
 */
async function setOpsReaderPassword(db, password) {
  await db.query(`ALTER ROLE "worldrouter_ops_reader" WITH LOGIN PASSWORD ${db.escapeLiteral(password)}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/worldrouter";
  await ensureDatabase(url);
  await migrate(url);
}

/** Creates the target database when missing, so a fresh machine needs no manual `createdb`. */
export async function ensureDatabase(databaseUrl) {
  const target = new URL(databaseUrl);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(databaseUrl);
  admin.pathname = "/postgres";
  const db = new pg.Client({ connectionString: admin.toString() });
  await db.connect();
  try {
    const { rowCount } = await db.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (!rowCount)
      await db.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`).catch((err) => {
        if (err.code !== "42P04") throw err; // created concurrently
      });
  } finally {
    await db.end();
  }
}
