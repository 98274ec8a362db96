#!/usr/bin/env node
// Supply-chain gate (CI): `npm audit --omit=dev --json` on the lockfile, failing on any high or critical advisory of a
// production dependency unless scripts/audit-exceptions.json lists it with a reason. Exit 0 = audited and clean;
// 1 = advisories to fix; 2 = the audit could not run (registry advisory endpoint unreachable or refusing): that is a
// failure too, said loudly, never a silent pass — an unchecked tree is not a clean one (docs/operations.md).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const BLOCKING = new Set(["high", "critical"]);
const exceptionsFile = new URL("./audit-exceptions.json", import.meta.url);

/** The blocking advisories of an `npm audit --json` report that no exception covers. */
export function blockingAdvisories(report, exceptions) {
  const allowed = new Map(exceptions.map((e) => [e.advisory, e]));
  const found = [];
  for (const vulnerability of Object.values(report.vulnerabilities ?? {}))
    for (const via of vulnerability.via ?? [])
      if (typeof via === "object" && BLOCKING.has(via.severity) && !allowed.has(via.url))
        found.push({ package: vulnerability.name, severity: via.severity, title: via.title, advisory: via.url, range: via.range });
  return found;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const exceptions = JSON.parse(readFileSync(exceptionsFile, "utf8")).exceptions;
  for (const e of exceptions)
    if (!e.advisory || !e.reason) throw new Error(`audit-exceptions.json: every exception needs advisory and reason: ${JSON.stringify(e)}`);
  const run = spawnSync("npm", ["audit", "--omit=dev", "--json"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  let report;
  try {
    report = JSON.parse(run.stdout);
  } catch {
    report = undefined;
  }
  if (!report || report.error || report.statusCode || !report.metadata) {
    const why = report?.message ?? (run.stderr.trim().split("\n").pop() || `npm audit exited ${run.status}`);
    process.stderr.write(`audit-production: UNCHECKED — the npm audit could not run: ${why}\n`);
    process.exit(2);
  }
  const found = blockingAdvisories(report, exceptions);
  const counts = report.metadata.vulnerabilities;
  process.stdout.write(
    `audit-production: production dependencies: ${JSON.stringify(counts)}; ${exceptions.length} documented exception(s)\n`,
  );
  for (const a of found) process.stdout.write(`  ${a.severity.toUpperCase()} ${a.package} ${a.range}: ${a.title} (${a.advisory})\n`);
  if (found.length) {
    process.stderr.write(`audit-production: ${found.length} high/critical advisory(ies) without a documented exception\n`);
    process.exit(1);
  }
}
