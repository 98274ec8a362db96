import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "@worldrouter/config";
import pg from "pg";
import { describe, expect, it } from "vitest";

/**
 * The provisioned Grafana dashboard (deploy/grafana) cannot drift from what exists: every ledger panel's SQL runs as
 * the read-only role against the migrated database (Grafana's macros expanded), and every Prometheus panel asks for
 * metrics the services register.
 */
const repo = fileURLToPath(new URL("../../../../", import.meta.url));
const dashboard = JSON.parse(readFileSync(join(repo, "deploy/grafana/dashboards/worldrouter.json"), "utf8")) as {
  panels: { title: string; targets: { datasource: { uid: string }; rawSql?: string; expr?: string }[] }[];
};
const targets = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ ...t, title: p.title })));

/** Grafana's Postgres macros, as Grafana expands them for a 24 h range and 5 min buckets. */
function expandMacros(sql: string): string {
  return sql
    .replace(/\$__timeGroupAlias\(("[^"]+"), \$__interval\)/g, `to_timestamp(floor(extract(epoch from $1) / 300) * 300) AS "time"`)
    .replace(/\$__timeFilter\(("[^"]+")\)/g, `$1 BETWEEN now() - interval '24 hours' AND now()`);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name === "node_modules" || e.name === "dist" || e.name === "generated") return [];
    const path = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(path) : e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [path] : [];
  });
}

describe("Grafana dashboard", () => {
  it("runs every ledger panel's SQL as worldrouter_ops_reader", async () => {
    const sqlTargets = targets.filter((t) => t.datasource.uid === "ledger");
    expect(sqlTargets.length).toBeGreaterThan(5);
    const config = loadConfig({ ...process.env, WORLD_FILE: "/nonexistent", PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa" });
    const reader = new pg.Client({ connectionString: config.ops.readerDatabaseUrl });
    await reader.connect();
    try {
      for (const target of sqlTargets) {
        await expect(reader.query(expandMacros(target.rawSql!)), target.title).resolves.toBeDefined();
      }
    } finally {
      await reader.end();
    }
  });

  it("asks Prometheus only for metrics the services register", () => {
    const registered = new Set(
      [...sourceFiles(join(repo, "services")), ...sourceFiles(join(repo, "libs"))].flatMap((f) =>
        [...readFileSync(f, "utf8").matchAll(/"(wr_[a-z_]+)"/g)].map((m) => m[1]!),
      ),
    );
    const asked = targets.filter((t) => t.expr).flatMap((t) => [...t.expr!.matchAll(/\b(wr_[a-z_]+)\b/g)].map((m) => m[1]!));
    expect(asked.length).toBeGreaterThan(5);
    expect(asked.filter((name) => !registered.has(name))).toEqual([]);
  });
});
