#!/usr/bin/env node
/**
 * `npm run reset`: wipes the local world and the dev ledger together, so they start again as one history: the local
 * chain's state and world files (.local/), the dev database (dropped, created and migrated again) and the dev Redis
 * namespace. Refuses to run against production settings.
 */
import { rmSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { loadConfig } from "@worldrouter/config";
import { deleteRedisNamespace } from "@worldrouter/runtime";
import { ensureDatabase, migrate } from "../prisma/migrate.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
if (process.env.NODE_ENV === "production") {
  process.stderr.write("npm run reset wipes the ledger: refusing with NODE_ENV=production\n");
  process.exit(1);
}
const config = loadConfig({ ...process.env, WORLD_FILE: "/nonexistent", PAYEE_ADDRESS: "0x0000000000000000000000000000000000000001" });
const worldFile = resolve(root, process.env.WORLD_FILE ?? ".local/world.json");
const chainStateFile = resolve(root, process.env.CHAIN_STATE_FILE ?? ".local/chain-state.json");
for (const file of [worldFile, chainStateFile]) rmSync(file, { force: true });
process.stdout.write(`removed ${worldFile} and ${chainStateFile}\n`);

const database = new URL(config.databaseUrl);
const name = database.pathname.slice(1);
const admin = new URL(database);
admin.pathname = "/postgres";
const client = new pg.Client({ connectionString: admin.toString() });
await client.connect();
await client.query(`DROP DATABASE IF EXISTS "${name.replaceAll('"', '""')}" WITH (FORCE)`).finally(() => client.end());
await ensureDatabase(database.toString());
await migrate(database.toString(), () => {});
process.stdout.write(`database ${name} dropped, created and migrated\n`);

await deleteRedisNamespace(config.redis.url, config.redis.namespace);
process.stdout.write(`Redis keys of namespace ${config.redis.namespace} deleted\n`);
