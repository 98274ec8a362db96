#!/usr/bin/env node
/**
 * Runs every benchmark, one after the other (they share this machine's cores, so never in parallel), each in
 * its own Node process with its output shown as it comes; then prints a one-line verdict per result file.
 *
 *   node bench/run.mjs [--only charge,streaming]
 *
 * Scripts: bench/*.bench.mjs and libs/<lib>/bench/*.bench.mjs (run against the built dist: `npm run bench`
 * builds first). Each writes bench/results/<name>.json. Exit code 1 when a script fails (targets missed are
 * reported, not failures).
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "./support/common.mjs";

const { values: args } = parseArgs({ options: { only: { type: "string" } } });
const only = args.only ? new Set(args.only.split(",")) : undefined;

function scripts() {
  const found = [];
  const collect = (dir) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir).sort()) if (name.endsWith(".bench.mjs")) found.push(join(dir, name));
  };
  collect(join(ROOT, "bench"));
  for (const lib of readdirSync(join(ROOT, "libs")).sort()) collect(join(ROOT, "libs", lib, "bench"));
  return found.filter((file) => !only || only.has(file.split("/").pop().replace(".bench.mjs", "")));
}

function runScript(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [file], { cwd: ROOT, stdio: "inherit" });
    child.once("exit", (code, signal) => resolve({ file, code, signal, seconds: Math.round((Date.now() - started) / 1000) }));
  });
}

/** `verdict` objects of the result files written since `since` (ms). */
function verdicts(since) {
  const dir = join(ROOT, "bench/results");
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith(".json")) continue;
    const path = join(dir, name);
    if (statSync(path).mtimeMs < since) continue;
    try {
      const result = JSON.parse(readFileSync(path, "utf8"));
      out.push({ name, verdict: result.verdict });
    } catch {
      out.push({ name, verdict: undefined });
    }
  }
  return out;
}

const started = Date.now();
const runs = [];
for (const file of scripts()) {
  process.stdout.write(`\n━━ ${relative(ROOT, file)} ━━\n`);
  runs.push(await runScript(file));
}

process.stdout.write("\n━━ summary ━━\n");
for (const run of runs)
  process.stdout.write(
    `${run.code === 0 ? "ok    " : "FAILED"}  ${relative(ROOT, run.file)} (${run.seconds} s${run.code === 0 ? "" : `, exit ${run.code ?? run.signal}`})\n`,
  );
for (const { name, verdict } of verdicts(started)) {
  if (!verdict) {
    process.stdout.write(`        ${name}: no verdict\n`);
    continue;
  }
  const entries = Object.entries(verdict);
  const met = entries.filter(([, ok]) => ok).length;
  process.stdout.write(
    `        ${name}: ${met}/${entries.length} targets met${
      met < entries.length
        ? ` — missed: ${entries
            .filter(([, ok]) => !ok)
            .map(([k]) => k)
            .join(", ")}`
        : ""
    }\n`,
  );
}
process.exitCode = runs.every((r) => r.code === 0) ? 0 : 1;
