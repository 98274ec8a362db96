/**
 * Streaming overhead of the relay path (gateway InferenceRelay → dispatch stream → inference-worker → Redis reply stream →
 * relay) against reading the same fake upstream directly.
 *
 *   node bench/streaming.bench.mjs [--iterations 300] [--chunks 64] [--concurrent 1000] [--in-process]
 *
 * Runs against the built dist (npm run build first) and a local Redis (REDIS_URL, default redis://127.0.0.1:6379).
 * By default three processes, as in production: the fake upstream and the inference worker (its real main.js)
 * are children; this process plays the gateway (the relay plus the client that consumes its messages).
 * `--in-process` boots the worker module inside this process instead (fewer processes competing for CPUs on a
 * small machine). Writes bench/results/streaming.json (streaming-in-process.json with --in-process).
 */
import "reflect-metadata";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Module } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { loadConfig } from "@worldrouter/config";
import { deleteRedisNamespace } from "@worldrouter/runtime";
import { CoreModule } from "@worldrouter/runtime";
import { Agent, request } from "undici";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { InferenceRelay } = await import(join(root, "services/gateway/dist/inference/inference-relay.js"));

const { values: args } = parseArgs({
  options: {
    iterations: { type: "string", default: "300" },
    warmup: { type: "string", default: "50" },
    chunks: { type: "string", default: "64" },
    concurrent: { type: "string", default: "1000" },
    "in-process": { type: "boolean", default: false },
  },
});
const IN_PROCESS = args["in-process"];
const ITERATIONS = Number(args.iterations);
const WARMUP = Number(args.warmup);
const CHUNKS = Number(args.chunks);
const CONCURRENT = Number(args.concurrent);
const TARGETS = { addedTtftP50Ms: 2, addedTtftP99Ms: 5, addedGapP50Ms: 0.3 };

const namespace = `bench-${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const children = [];

function log(line) {
  process.stderr.write(`${line}\n`);
}

/** Starts a child and resolves with it once a stdout line matches `ready`. */
function startChild(name, args, env, ready) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    let buffer = "";
    const onData = (data) => {
      buffer += data.toString();
      const match = ready.exec(buffer);
      if (match) {
        child.stdout.off("data", onData);
        child.stdout.resume();
        resolve({ child, match });
      }
    };
    child.stdout.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code} before it was ready:\n${buffer}`)));
  });
}

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function rssOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (x) => Math.round(x * 1000) / 1000;
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1)),
  };
}

const MB = (bytes) => Math.round((bytes / 1024 / 1024) * 10) / 10;

// ── processes ──────────────────────────────────────────────────────────────────────────────────────────────
log(`starting fake upstream (${CHUNKS} tokens, 1 token per chunk, zero latency) and inference worker…`);
const fakeScript = `
  import { startFakeUpstream } from "@worldrouter/fake-upstream";
  const upstream = await startFakeUpstream({ port: 0, defaults: { completionTokens: ${CHUNKS}, chunkTokens: 1, ttftMs: 0, latencyMs: 0 } });
  process.stdout.write("fake-upstream ready " + upstream.url + "\\n");
`;
const { child: fake, match: fakeReady } = await startChild(
  "fake upstream",
  ["--input-type=module", "-e", fakeScript],
  {},
  /fake-upstream ready (\S+)\n/,
);
const fakeUrl = fakeReady[1];

const env = {
  NODE_ENV: "development",
  LOG_LEVEL: "info",
  WORLD_FILE: "/nonexistent",
  PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
  REDIS_URL: redisUrl,
  REDIS_NAMESPACE: namespace,
  OPENAI_BASE_URL: `${fakeUrl}/v1`,
  OPENAI_API_KEY: "bench",
  ANTHROPIC_BASE_URL: fakeUrl,
  ANTHROPIC_API_KEY: "bench",
  INFERENCE_CONCURRENCY: String(Math.max(CONCURRENT, 256)),
  INFERENCE_WORKER_HEALTH_PORT: String(await freePort()),
};
const config = loadConfig({ ...process.env, ...env, LOG_LEVEL: "warn" });
let worker = process;
let workerApp;
if (IN_PROCESS) {
  const { InferenceWorkerModule } = await import(join(root, "services/inference-worker/dist/inference-worker.module.js"));
  workerApp = await NestFactory.createApplicationContext(InferenceWorkerModule.forRoot(config), { logger: false });
  await workerApp.init();
} else {
  ({ child: worker } = await startChild("inference worker", ["services/inference-worker/dist/main.js"], env, /inference-worker ready/));
}

class BenchGatewayModule {}
Module({ imports: [CoreModule.forRoot("gateway", config)], providers: [InferenceRelay] })(BenchGatewayModule);
const gateway = await NestFactory.createApplicationContext(BenchGatewayModule, { logger: false });
await gateway.init();
const relay = gateway.get(InferenceRelay);

// ── workloads ──────────────────────────────────────────────────────────────────────────────────────────────
const MESSAGES = [{ role: "user", content: "Benchmark the relay, please." }];
const body = (i) => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: `${MESSAGES[0].content} #${i}` }],
  stream: true,
  stream_options: { include_usage: true },
});

/**
 * A client reading the fake's SSE itself: TTFT to the first data event, gaps between data events. It uses the
 * worker's HTTP client (undici.request), so "added" is what the relay path adds, not a difference of clients.
 */
const directPool = new Agent();
async function direct(i) {
  const start = performance.now();
  const response = await request(`${fakeUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer bench" },
    body: JSON.stringify(body(i)),
    dispatcher: directPool,
  });
  const decoder = new TextDecoder();
  let buffer = "";
  let first = null;
  let last = 0;
  const gaps = [];
  let chunks = 0;
  for await (const bytes of response.body) {
    buffer += decoder.decode(bytes, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      JSON.parse(event.slice(6));
      const now = performance.now();
      if (first === null) first = now - start;
      else gaps.push(now - last);
      last = now;
      chunks++;
    }
  }
  return { ttft: first, gaps, chunks, error: null };
}

let seq = 0;
/** The same request through relay + queue + worker, read as the gateway's HTTP handler reads it. */
async function relayed(i) {
  const requestId = `wr_bench${(seq++).toString(36).padStart(8, "0")}`;
  const start = performance.now();
  let first = null;
  let last = 0;
  const gaps = [];
  let chunks = 0;
  let error = null;
  let ended = false;
  const messages = relay.run(
    {
      requestId,
      model: "gpt-4o-mini",
      intent: "charge",
      payer: "0x00000000000000000000000000000000000000bb",
      body: body(i),
      stream: true,
      promptTokens: 10,
      estimatedCost: "1",
    },
    new AbortController().signal,
  );
  for await (const message of messages) {
    if (message.type === "chunk") {
      JSON.parse(message.data);
      const now = performance.now();
      if (first === null) first = now - start;
      else gaps.push(now - last);
      last = now;
      chunks++;
    } else if (message.type === "error") error = `${message.status} ${message.code}: ${message.message}`;
    else if (message.type === "end") ended = true;
  }
  if (!ended && !error) error = "stream ended without end";
  return { ttft: first, gaps, chunks, error };
}

/** Direct and relayed streams alternate, so background noise on the machine hits both sides alike. */
async function sequential() {
  for (let i = 0; i < WARMUP; i++) {
    await direct(i);
    await relayed(i);
  }
  const sides = { direct: { run: direct, ttft: [], gaps: [], chunks: 0 }, relayed: { run: relayed, ttft: [], gaps: [], chunks: 0 } };
  for (let i = 0; i < ITERATIONS; i++) {
    for (const [name, side] of Object.entries(sides)) {
      const result = await side.run(i);
      if (result.error) throw new Error(`${name} request failed: ${result.error}`);
      side.ttft.push(result.ttft);
      side.gaps.push(...result.gaps);
      side.chunks = result.chunks;
    }
  }
  const report = (side) => ({ ttftMs: summary(side.ttft), gapMs: summary(side.gaps), chunksPerStream: side.chunks });
  return { direct: report(sides.direct), relayed: report(sides.relayed) };
}

log(`sequential: ${WARMUP} warm-up + ${ITERATIONS} measured streams each, direct and relayed alternating…`);
const { direct: directSeq, relayed: relayedSeq } = await sequential();

async function concurrent(name, run) {
  const peak = { self: 0, worker: 0, fake: 0 };
  const sample = () => {
    peak.self = Math.max(peak.self, process.memoryUsage().rss);
    peak.worker = Math.max(peak.worker, rssOf(worker.pid));
    peak.fake = Math.max(peak.fake, rssOf(fake.pid));
  };
  sample();
  const sampler = setInterval(sample, 20);
  const start = performance.now();
  const results = await Promise.all(
    Array.from({ length: CONCURRENT }, (_, i) => run(i).catch((err) => ({ error: String(err), ttft: null, gaps: [], chunks: 0 }))),
  );
  const wallMs = performance.now() - start;
  clearInterval(sampler);
  sample();
  const errors = results.filter((r) => r.error);
  const expected = results.find((r) => !r.error)?.chunks;
  return {
    streams: CONCURRENT,
    errors: errors.length,
    firstErrors: [...new Set(errors.map((r) => r.error))].slice(0, 3),
    incomplete: results.filter((r) => !r.error && r.chunks !== expected).length,
    wallMs: Math.round(wallMs),
    chunksPerSecond: Math.round((results.reduce((n, r) => n + r.chunks, 0) / wallMs) * 1000),
    ttftMs: summary(results.filter((r) => r.ttft !== null).map((r) => r.ttft)),
    peakRssMb: { gatewayProcess: MB(peak.self), workerProcess: MB(peak.worker), fakeUpstreamProcess: MB(peak.fake) },
    name,
  };
}

log(`concurrent: ${CONCURRENT} streams at once, direct then relayed…`);
const directConc = await concurrent("direct", direct);
const relayedConc = await concurrent("relayed", relayed);

// ── report ─────────────────────────────────────────────────────────────────────────────────────────────────
const round = (x) => Math.round(x * 1000) / 1000;
const added = {
  ttftP50Ms: round(relayedSeq.ttftMs.p50 - directSeq.ttftMs.p50),
  ttftP99Ms: round(relayedSeq.ttftMs.p99 - directSeq.ttftMs.p99),
  gapP50Ms: round(relayedSeq.gapMs.p50 - directSeq.gapMs.p50),
};
const verdict = {
  addedTtftP50: added.ttftP50Ms <= TARGETS.addedTtftP50Ms,
  addedTtftP99: added.ttftP99Ms <= TARGETS.addedTtftP99Ms,
  addedGapP50: added.gapP50Ms <= TARGETS.addedGapP50Ms,
  concurrentWithoutErrors: relayedConc.errors === 0 && relayedConc.incomplete === 0,
};

const rows = [
  ["", "direct", "relayed", "added", "target"],
  [
    "TTFT p50 (ms)",
    directSeq.ttftMs.p50,
    relayedSeq.ttftMs.p50,
    added.ttftP50Ms,
    `≤ ${TARGETS.addedTtftP50Ms} ${verdict.addedTtftP50 ? "✓" : "✗"}`,
  ],
  [
    "TTFT p99 (ms)",
    directSeq.ttftMs.p99,
    relayedSeq.ttftMs.p99,
    added.ttftP99Ms,
    `≤ ${TARGETS.addedTtftP99Ms} ${verdict.addedTtftP99 ? "✓" : "✗"}`,
  ],
  [
    "inter-chunk gap p50 (ms)",
    directSeq.gapMs.p50,
    relayedSeq.gapMs.p50,
    added.gapP50Ms,
    `≤ ${TARGETS.addedGapP50Ms} ${verdict.addedGapP50 ? "✓" : "✗"}`,
  ],
  ["inter-chunk gap p99 (ms)", directSeq.gapMs.p99, relayedSeq.gapMs.p99, round(relayedSeq.gapMs.p99 - directSeq.gapMs.p99), ""],
  [`${CONCURRENT} concurrent: errors`, directConc.errors, relayedConc.errors, "", `0 ${verdict.concurrentWithoutErrors ? "✓" : "✗"}`],
  [`${CONCURRENT} concurrent: wall (ms)`, directConc.wallMs, relayedConc.wallMs, relayedConc.wallMs - directConc.wallMs, ""],
  [
    `${CONCURRENT} concurrent: TTFT p50 (ms)`,
    directConc.ttftMs.p50,
    relayedConc.ttftMs.p50,
    round(relayedConc.ttftMs.p50 - directConc.ttftMs.p50),
    "",
  ],
  [
    `${CONCURRENT} concurrent: TTFT p99 (ms)`,
    directConc.ttftMs.p99,
    relayedConc.ttftMs.p99,
    round(relayedConc.ttftMs.p99 - directConc.ttftMs.p99),
    "",
  ],
  [`${CONCURRENT} concurrent: chunks/s`, directConc.chunksPerSecond, relayedConc.chunksPerSecond, "", ""],
  ["peak RSS gateway proc (MB)", directConc.peakRssMb.gatewayProcess, relayedConc.peakRssMb.gatewayProcess, "", "relay + client"],
  [
    "peak RSS worker proc (MB)",
    "—",
    IN_PROCESS ? "(same)" : relayedConc.peakRssMb.workerProcess,
    "",
    IN_PROCESS ? "worker in-process" : "",
  ],
  ["peak RSS fake upstream (MB)", directConc.peakRssMb.fakeUpstreamProcess, relayedConc.peakRssMb.fakeUpstreamProcess, "", ""],
];
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
const table = rows
  .map((r) => r.map((cell, c) => (c === 0 ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c]))).join("  "))
  .join("\n");
const load = (await import("node:os")).loadavg().map((x) => Math.round(x * 100) / 100);
process.stdout.write(
  `\nstreaming (${IN_PROCESS ? "worker in-process" : "worker in its own process"}): ${CHUNKS} chunks per stream, ${ITERATIONS} sequential streams, ${CONCURRENT} concurrent; load average ${load.join(" ")}\n\n${table}\n\n`,
);

const result = {
  benchmark: "streaming",
  date: new Date().toISOString(),
  node: process.version,
  cpus: (await import("node:os")).availableParallelism(),
  loadAverage: load,
  setup: {
    chunksPerStream: CHUNKS,
    iterations: ITERATIONS,
    warmup: WARMUP,
    concurrent: CONCURRENT,
    processes: IN_PROCESS
      ? "fake upstream (child); inference-worker module, relay and client in one process; Redis local"
      : "fake upstream (child), inference-worker dist/main.js (child), relay + client (this process); Redis local",
  },
  targets: TARGETS,
  added,
  verdict,
  sequential: { direct: directSeq, relayed: relayedSeq },
  concurrent: { direct: directConc, relayed: relayedConc },
};
mkdirSync(join(root, "bench/results"), { recursive: true });
const resultFile = `bench/results/streaming${IN_PROCESS ? "-in-process" : ""}.json`;
writeFileSync(join(root, resultFile), `${JSON.stringify(result, null, 2)}\n`);
log(`wrote ${resultFile}`);

// ── teardown ───────────────────────────────────────────────────────────────────────────────────────────────
await gateway.close();
await workerApp?.close();
await directPool.close();
for (const child of children) child.kill("SIGTERM");
await Promise.all(children.map((child) => (child.exitCode === null ? new Promise((resolve) => child.once("exit", resolve)) : undefined)));
await deleteRedisNamespace(redisUrl, namespace);
