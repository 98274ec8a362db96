/**
 * Shared helpers for the benchmark scripts: statistics, tables, child processes, ports, CPU and Prometheus
 * readings. Plain Node ESM, no dependencies.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** Benches that are not about rate limits run every request from 127.0.0.1: keep the per-client limits out of the way. */
export const RATE_LIMITS_OFF = { RATE_LIMIT_UNPAID: "1000000000", RATE_LIMIT_PAID: "1000000000", RATE_LIMIT_SESSION: "1000000000" };
export const log = (line) => process.stderr.write(`${line}\n`);
export const round = (x, digits = 3) =>
  x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10 ** digits) / 10 ** digits;
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function summary(samples) {
  const sorted = samples.filter((x) => x !== null && x !== undefined && !Number.isNaN(x)).sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1);
  return {
    n: sorted.length,
    mean: round(mean),
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? NaN),
  };
}

/** Aligned plain-text table; the first row is the header. */
export function table(rows) {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? "—" : String(c))));
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ")).join("\n");
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Spawns `node <args>` and resolves once a stdout line matches `ready` (the match is returned). stderr is kept
 * (last lines) for error messages; stdout keeps being drained.
 */
export function startChild(name, args, { env = {}, ready, timeoutMs = 60_000, nodeArgs = [] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const errLines = [];
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`${name} not ready after ${timeoutMs} ms`)), timeoutMs);
    const fail = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${err.message}\n--- ${name} stderr ---\n${errLines.join("\n")}\n--- stdout ---\n${out.slice(-2000)}`));
    };
    child.stderr.setEncoding("utf8").on("data", (d) => {
      errLines.push(...d.split("\n").filter(Boolean));
      if (errLines.length > 60) errLines.splice(0, errLines.length - 60);
    });
    child.stdout.setEncoding("utf8").on("data", (d) => {
      if (settled) return;
      out += d;
      const match = ready.exec(out);
      if (match) {
        settled = true;
        clearTimeout(timer);
        resolve({ child, match, stderr: errLines });
      }
    });
    child.once("exit", (code, signal) => fail(new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready`)));
  });
}

export async function stopChild(child, timeoutMs = 10_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** CPU seconds (user + system) a process has used, from /proc (10 ms resolution). */
export function procCpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

export function procRssBytes(pid) {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;
}

/** Parses Prometheus text exposition into [{name, labels, value}]. */
export function parsePrometheus(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const l of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

export async function scrape(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return parsePrometheus(await response.text());
}

export const metricValue = (samples, name, match = {}) =>
  samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

/**
 * Histogram delta between two scrapes: count, mean, and p50/p99 estimated by linear interpolation inside
 * buckets (Prometheus' histogram_quantile), so only as precise as the bucket bounds.
 */
export function histogramDelta(before, after, name, match = {}) {
  const pick = (samples, suffix) =>
    samples.filter((s) => s.name === `${name}${suffix}` && Object.entries(match).every(([k, v]) => s.labels[k] === v));
  const count = metricValue(after, `${name}_count`, match) - metricValue(before, `${name}_count`, match);
  const sum = metricValue(after, `${name}_sum`, match) - metricValue(before, `${name}_sum`, match);
  const buckets = new Map();
  for (const s of pick(after, "_bucket")) buckets.set(s.labels.le, (buckets.get(s.labels.le) ?? 0) + s.value);
  for (const s of pick(before, "_bucket")) buckets.set(s.labels.le, (buckets.get(s.labels.le) ?? 0) - s.value);
  const bounds = [...buckets.entries()].map(([le, c]) => [le === "+Inf" ? Infinity : Number(le), c]).sort((a, b) => a[0] - b[0]);
  const quantile = (q) => {
    if (!count) return null;
    const rank = q * count;
    let prevBound = 0;
    let prevCount = 0;
    for (const [bound, c] of bounds) {
      if (c >= rank) {
        if (bound === Infinity) return prevBound;
        return prevBound + ((bound - prevBound) * (rank - prevCount)) / Math.max(1e-9, c - prevCount);
      }
      prevBound = bound;
      prevCount = c;
    }
    return null;
  };
  return { count, mean: count ? round(sum / count) : null, p50: round(quantile(0.5)), p99: round(quantile(0.99)) };
}

/** Runs `worker(i)` for i in [0, total) with at most `concurrency` in flight. */
export async function pool(total, concurrency, worker) {
  let next = 0;
  const results = new Array(total);
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        results[i] = await worker(i);
      }
    }),
  );
  return results;
}

/** Wall-clock milliseconds with sub-millisecond precision (comparable with Redis/other processes on this box). */
export const wallMs = () => performance.timeOrigin + performance.now();
