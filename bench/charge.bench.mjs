/**
 * Charge intent benchmark: the 402 challenge, a full paid request, the gateway's overhead and the server CPU per
 * paid charge — our four built services side by side with mppx's reference server, in ONE run on this box.
 *
 *   node bench/charge.bench.mjs [--quick] [--seconds 6] [--paid 160] [--paid-concurrent 320]
 *
 * Needs the built dist (`npm run build`), Postgres and Redis (DATABASE_URL's server, REDIS_URL). Creates a
 * throwaway database `wr_bench_<run>` and Redis namespace `wrbench-<run>`, both removed at the end.
 *
 * Processes (all on this machine): anvil (Tempo mode) · fake OpenAI upstream (child) · a JSON-RPC timing proxy
 * (child) between the chain and both servers · our four services (dev-runner's startSystem, NODE_ENV=production)
 * · mppx reference server (child) · plain node:http server (child) · this process = the clients (autocannon
 * for throughput, node:http / mppx client for latency) and the passive Redis observer.
 *
 * Writes bench/results/charge.json.
 */
import "reflect-metadata";
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { availableParallelism, cpus, loadavg } from "node:os";
import { join, resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import pg from "pg";
import { Mppx, tempo } from "mppx/client";
import { privateKeyToAccount } from "viem/accounts";
import { createTempoClients } from "@worldrouter/chain";
import { loadConfig } from "@worldrouter/config";
import { throwawayStores } from "./support/throwaway.mjs";
import { deployWorld, startAnvil } from "@worldrouter/devchain";
import { startSystem } from "@worldrouter/dev-runner";
import { spawnServiceFrom as spawnService, stopService, waitUntilReady } from "./support/services.mjs";
import { measureGatewaySteps } from "./support/gateway-steps.mjs";
import { PaymentPathObserver } from "./support/observer.mjs";
import { monitorRedis } from "./support/redis-monitor.mjs";
import {
  RATE_LIMITS_OFF,
  ROOT,
  histogramDelta,
  log,
  metricValue,
  pool,
  procCpuSeconds,
  procRssBytes,
  round,
  scrape,
  sleep,
  startChild,
  stopChild,
  summary,
  table,
  wallMs,
} from "./support/common.mjs";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    seconds: { type: "string" },
    latency: { type: "string" },
    paid: { type: "string" },
    "paid-concurrent": { type: "string" },
    concurrency: { type: "string", default: "32" },
    phases: { type: "string", default: "steps,challenge,paid" },
    profile: { type: "string" },
    "service-dist": { type: "string", multiple: true, default: [] },
  },
});
/**
 * `--service-dist <service>=<dir>` (repeatable): after start-up, replace that service by `<dir>/main.js` (same
 * env, same ports) — to measure a proposed change on a patched copy of services/<service>/dist kept outside
 * the repository.
 */
const SERVICE_DISTS = Object.fromEntries(
  args["service-dist"].map((spec) => {
    const [name, dir] = spec.split("=");
    return [name, resolvePath(dir)];
  }),
);
/** Which parts run (a partial run prints its raw results and does not write charge.json). */
const PHASES = new Set(args.phases.split(","));
const FULL = ["steps", "challenge", "paid"].every((p) => PHASES.has(p));
/** `--profile <dir>`: every service and the mppx reference server write a CPU profile into <dir> when they stop. */
const PROFILE_DIR = args.profile ? resolvePath(args.profile) : undefined;
const QUICK = args.quick;
const SECONDS = Number(args.seconds ?? (QUICK ? 3 : 6));
const LATENCY_N = Number(args.latency ?? (QUICK ? 500 : 2000));
const PAID_N = Number(args.paid ?? (QUICK ? 40 : 160));
const PAID_CONCURRENT_N = Number(args["paid-concurrent"] ?? (QUICK ? 96 : 320));
const C = Number(args.concurrency);
/** Payer wallets: dev accounts 3…9 (anvil's Tempo genesis funds the first ten dev accounts, which the sponsored-tx preflight needs). */
const WALLETS = 7;

const TARGETS = {
  challengePerSecondC32: 10_000,
  challengeP99MsC1: 2,
  cpuMsPerPaidCharge: 3,
  gatewayOverheadP50Ms: 1.5,
  gatewayOverheadP99Ms: 5,
};

const stores = throwawayStores();
const { run, namespace, adminUrl, databaseUrl, redisUrl, scratch } = stores;

const children = [];
const cleanups = [];
let system;
const serviceLines = { gateway: 0, "payment-verifier": 0, "inference-worker": 0, settlement: 0 };
const recentLines = [];

async function teardown() {
  if (system) await system.stop().catch((err) => log(`system stop: ${err.message}`));
  for (const child of children.reverse()) await stopChild(child).catch(() => undefined);
  for (const fn of cleanups.reverse()) await fn().catch((err) => log(`cleanup: ${err.message}`));
  await stores.remove();
}
process.once("SIGINT", () => {
  log("interrupted: cleaning up…");
  teardown().finally(() => process.exit(130));
});

// ── set-up ───────────────────────────────────────────────────────────────────────────────────────────────────
async function setUp() {
  log(`run ${run}: database ${databaseUrl.pathname.slice(1)}, Redis namespace ${namespace}`);
  const anvil = await startAnvil();
  cleanups.push(() => anvil.stop());
  const world = await deployWorld(anvil.rpcUrl, { payerCount: WALLETS });
  log(`anvil ${anvil.rpcUrl}, USDC.e ${world.token.address}, ${world.wallets.length} funded wallets`);

  const fakeScript = `
    import { startFakeUpstream } from "@worldrouter/fake-upstream";
    const upstream = await startFakeUpstream({ port: 0 });
    process.stdout.write("fake-upstream ready " + upstream.url + "\\n");
    process.on("SIGTERM", () => upstream.close().then(() => process.exit(0)));`;
  const fake = await startChild("fake upstream", ["--input-type=module", "-e", fakeScript], { ready: /fake-upstream ready (\S+)\n/ });
  children.push(fake.child);
  const fakeUrl = fake.match[1];

  const proxy = await startChild("rpc proxy", ["bench/support/rpc-timing-proxy.mjs", anvil.rpcUrl, "services", "mppx"], {
    ready: /rpc-proxy ready\n/,
  });
  children.push(proxy.child);
  const proxyUrls = Object.fromEntries([...proxy.match.input.matchAll(/rpc-proxy (\S+) (http\S+)\n/g)].map((m) => [m[1], m[2]]));

  const secretKey = randomBytes(32).toString("hex");
  const env = {
    ...process.env,
    ...RATE_LIMITS_OFF,
    NODE_ENV: "production",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "info",
    DATABASE_URL: databaseUrl.toString(),
    REDIS_URL: redisUrl,
    REDIS_NAMESPACE: namespace,
    MPP_SECRET_KEY: secretKey,
    OPS_TOKEN: randomBytes(24).toString("hex"),
    OPS_READER_PASSWORD: randomBytes(16).toString("hex"),
    CHAIN_RPC_URL: proxyUrls.services,
    CHAIN_ID: String(world.chainId),
    TOKEN_ADDRESS: world.token.address,
    ESCROW_ADDRESS: world.escrow,
    PAYEE_ADDRESS: world.payee.address,
    PAYEE_PRIVATE_KEY: world.payee.privateKey,
    FEE_PAYER_PRIVATE_KEY: world.feePayer.privateKey,
    OPENAI_BASE_URL: `${fakeUrl}/v1`,
    OPENAI_API_KEY: "bench-fake-upstream",
    ANTHROPIC_BASE_URL: fakeUrl,
    ANTHROPIC_API_KEY: "bench-fake-upstream",
  };
  delete env.NODE_OPTIONS;
  if (PROFILE_DIR)
    Object.assign(env, { NODE_OPTIONS: `--import=${join(ROOT, "bench/support/cpu-profiler.mjs")}`, BENCH_CPU_PROFILE_DIR: PROFILE_DIR });
  log("starting the four services…");
  system = await startSystem({
    env,
    worldFile: join(scratch, "world.json"),
    freePorts: true,
    onLine: (service, line) => {
      if (service in serviceLines) serviceLines[service]++;
      recentLines.push(`${service} | ${line}`);
      if (recentLines.length > 200) recentLines.shift();
    },
  }).catch((err) => {
    throw new Error(
      `${err.message}\n${recentLines
        .slice(-40)
        .map((l) => l.slice(0, 400))
        .join("\n")}`,
    );
  });
  const config = loadConfig(system.env);
  const gatewayInternalUrl = system.replicas.gateway[0].internalUrl;
  for (const [name, dir] of Object.entries(SERVICE_DISTS)) {
    const original = system.services.find((s) => s.name === name);
    if (!original) throw new Error(`--service-dist: unknown service ${name}`);
    await stopService(original);
    const replacement = spawnService(
      name,
      system.env,
      (service, line) => {
        recentLines.push(`${service} | ${line}`);
        if (recentLines.length > 200) recentLines.shift();
      },
      join(dir, "main.js"),
    );
    system.services[system.services.indexOf(original)] = replacement;
    const health = {
      gateway: `${gatewayInternalUrl}/readyz`,
      "payment-verifier": `http://127.0.0.1:${config.health.paymentVerifierPort}/readyz`,
      "inference-worker": `http://127.0.0.1:${config.health.inferenceWorkerPort}/readyz`,
      settlement: `http://127.0.0.1:${config.health.settlementPort}/readyz`,
    };
    await waitUntilReady(health[name], replacement);
    log(`${name} replaced by ${dir}/main.js`);
  }
  const pids = Object.fromEntries(system.services.map((s) => [s.name, s.child.pid]));
  const metricsUrls = {
    gateway: `${gatewayInternalUrl}/metrics`,
    "payment-verifier": `http://127.0.0.1:${config.health.paymentVerifierPort}/metrics`,
    "inference-worker": `http://127.0.0.1:${config.health.inferenceWorkerPort}/metrics`,
    settlement: `http://127.0.0.1:${config.health.settlementPort}/metrics`,
  };
  log(`gateway ${system.gatewayUrl} (realm ${config.gateway.realm})`);
  return {
    world,
    anvil,
    fakeUrl,
    proxyUrls,
    secretKey,
    config,
    pids,
    metricsUrls,
    chatUrl: `${system.gatewayUrl}/x402/v1/chat/completions`,
  };
}

// ── clients ──────────────────────────────────────────────────────────────────────────────────────────────────
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
/** One POST over a keep-alive connection; resolves when the whole body is read. */
function post(url, body, headers = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
            ms: performance.now() - start,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const chatBody = (text, extra = {}) => JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: text }], ...extra });
const WORDS =
  "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango".split(" ");
const promptText = (i) =>
  `Summarise item ${i}: ${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]} ${WORDS[(i * 13) % WORDS.length]}, in one sentence.`;

/** With --profile: every profiled process writes its CPU profile since the last mark, named `<label>-…`. */
async function profileMark(label, pids) {
  if (!PROFILE_DIR) return;
  writeFileSync(join(PROFILE_DIR, "label"), label);
  for (const pid of pids) process.kill(pid, "SIGUSR2");
  await sleep(1500);
}

async function cpuOfPids(pids) {
  return Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, procCpuSeconds(pid)]));
}

async function referenceCpuSeconds(url) {
  const response = await fetch(`${url}/__cpu`);
  const { userUs, systemUs } = await response.json();
  return (userUs + systemUs) / 1e6;
}

// ── (a) the 402 challenge ────────────────────────────────────────────────────────────────────────────────────
async function challengeThroughput(name, url, pid, cpuOf) {
  const bodies = Array.from({ length: 512 }, (_, i) => ({
    method: "POST",
    path: new URL(url).pathname,
    headers: { "content-type": "application/json" },
    body: chatBody(promptText(i)),
  }));
  const common = { url, connections: C, pipelining: 1, requests: bodies };
  await autocannon({ ...common, duration: Math.max(1, Math.round(SECONDS / 3)) }); // warm-up (JIT, connection set-up)
  const cpuBefore = await cpuOf();
  const clientBefore = process.cpuUsage();
  const result = await autocannon({ ...common, duration: SECONDS });
  const cpuAfter = await cpuOf();
  const client = process.cpuUsage(clientBefore);
  const total = result.requests.total;
  const statuses = Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count]));
  return {
    name,
    connections: C,
    seconds: SECONDS,
    requests: total,
    perSecond: Math.round(total / (result.duration || SECONDS)),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    statuses,
    errors: result.errors + result.timeouts,
    serverCpuUsPerRequest: round(((cpuAfter - cpuBefore) * 1e6) / total, 1),
    serverCpuCores: round((cpuAfter - cpuBefore) / (result.duration || SECONDS), 2),
    clientCpuCores: round((client.user + client.system) / 1e6 / (result.duration || SECONDS), 2),
    pid,
  };
}

async function challengeLatency(targets) {
  const samples = Object.fromEntries(targets.map((t) => [t.name, []]));
  const cpuBefore = Object.fromEntries(await Promise.all(targets.map(async (t) => [t.name, await t.cpu()])));
  const warm = Math.min(300, LATENCY_N / 4);
  for (let i = 0; i < warm + LATENCY_N; i++) {
    const body = chatBody(promptText(100_000 + i));
    for (const t of targets) {
      const r = await post(t.url, body);
      if (r.status !== t.status) throw new Error(`${t.name}: expected ${t.status}, got ${r.status}: ${r.body.slice(0, 300)}`);
      if (i >= warm) samples[t.name].push(r.ms);
    }
  }
  const out = {};
  for (const t of targets)
    out[t.name] = {
      ...summary(samples[t.name]),
      serverCpuUsPerRequest: round((((await t.cpu()) - cpuBefore[t.name]) * 1e6) / (warm + LATENCY_N), 1),
    };
  return out;
}

// ── (b) paid requests ────────────────────────────────────────────────────────────────────────────────────────
const legs = new AsyncLocalStorage();
/** The fetch mppx uses: unmodified network calls, timed per leg (first = the 402, second = the paid retry). */
async function timedFetch(input, init) {
  const record = legs.getStore();
  const leg = { start: wallMs() };
  record?.legs.push(leg);
  const response = await fetch(input, init);
  leg.headers = wallMs();
  leg.status = response.status;
  return response;
}

function payers(world, rpcUrl) {
  return world.wallets.slice(0, WALLETS).map((wallet) => {
    const account = privateKeyToAccount(wallet.privateKey);
    const clients = createTempoClients({ rpcUrl, chainId: world.chainId, feeToken: world.token.address });
    return Mppx.create({
      polyfill: false,
      fetch: timedFetch,
      methods: [tempo.charge({ account, getClient: () => clients.publicClient, expectedChainId: world.chainId, mode: "pull" })],
    });
  });
}

/** One paid request with an unmodified mppx client: 402 → credential (signs a sponsored 0x76 tx) → paid retry. */
async function paidRequest(mppx, url, body) {
  const record = { legs: [] };
  const start = wallMs();
  const response = await legs.run(record, () => mppx.fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body }));
  const text = await response.text();
  const end = wallMs();
  if (response.status !== 200) throw new Error(`paid request answered ${response.status}: ${text.slice(0, 400)}`);
  const [challenge, paid] = record.legs;
  if (!challenge || !paid || challenge.status !== 402) throw new Error(`unexpected legs ${JSON.stringify(record.legs)}`);
  return {
    requestId: response.headers.get("x-request-id"),
    start,
    end,
    paidStart: paid.start,
    totalMs: end - start,
    challengeMs: challenge.headers - challenge.start,
    credentialMs: paid.start - challenge.headers,
    paidLegMs: end - paid.start,
    /** The gateway's own verification span (RPC to payment-verifier, chain included), from its Server-Timing header. */
    gatewayVerifyMs: Number(/verify;dur=([\d.]+)/.exec(response.headers.get("server-timing") ?? "")?.[1] ?? Number.NaN),
  };
}

async function drainProxy(url) {
  return (await fetch(`${url}/__calls`)).json();
}

/** Chain calls (from the timing proxy) that ran inside [from, to]. */
function callsWithin(calls, from, to) {
  return calls.filter(([, s, e]) => s >= from && e <= to);
}

async function servicesSnapshot(ctx) {
  const entries = await Promise.all(Object.entries(ctx.metricsUrls).map(async ([name, url]) => [name, await scrape(url)]));
  return Object.fromEntries(entries);
}

/** Waits until settlement and the worker have handled every job the paid requests caused. */
async function waitForJobs(ctx, before, n) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const now = await servicesSnapshot(ctx);
    const done = (svc, queue) =>
      metricValue(now[svc], "wr_jobs_processed_total", { queue }) - metricValue(before[svc], "wr_jobs_processed_total", { queue });
    const applied = (kind) =>
      metricValue(now.settlement, "wr_money_events_applied_total", { kind }) -
      metricValue(before.settlement, "wr_money_events_applied_total", { kind });
    if (applied("charge.verified") >= n && applied("inference.usage") >= n && done("inference-worker", "inference") >= n) return now;
    if (Date.now() > deadline)
      throw new Error(
        `jobs not drained: payments ${applied("charge.verified")}, usage ${applied("inference.usage")}, inference ${done("inference-worker", "inference")} of ${n}`,
      );
    await sleep(100);
  }
}

function cpuDelta(before, after) {
  const out = {};
  for (const name of Object.keys(after))
    out[name] = metricValue(after[name], "process_cpu_seconds_total") - metricValue(before[name], "process_cpu_seconds_total");
  return out;
}

async function paidPhase(ctx, observer, { concurrency, n, label }) {
  const clients = payers(ctx.world, ctx.anvil.rpcUrl);
  const before = await servicesSnapshot(ctx);
  const snapshotStart = performance.now();
  const procBefore = await cpuOfPids(ctx.pids);
  const clientBefore = process.cpuUsage();
  await drainProxy(ctx.proxyUrls.services);
  observer.clear();
  const direct = [];
  const started = performance.now();
  const results = await pool(n, concurrency, async (i) => {
    const body = chatBody(`${label} paid request ${i}: ${promptText(i)}`);
    const result = await paidRequest(clients[i % clients.length], ctx.chatUrl, body);
    if (concurrency === 1) {
      // The same body straight to the fake upstream (what a client without us would call), interleaved.
      const t = wallMs();
      const response = await fetch(`${ctx.fakeUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer bench" },
        body,
      });
      await response.text();
      direct.push(wallMs() - t);
    }
    return result;
  });
  const wallSeconds = (performance.now() - started) / 1000;
  const client = process.cpuUsage(clientBefore);
  const after = await waitForJobs(ctx, before, n);
  const snapshotSeconds = (performance.now() - snapshotStart) / 1000;
  const procAfter = await cpuOfPids(ctx.pids);
  await sleep(50);
  const calls = await drainProxy(ctx.proxyUrls.services);

  // Split of the paid leg from the observer's hand-off times.
  const split = {
    gatewayIn: [],
    verification: [],
    chain: [],
    verificationOffChain: [],
    gatewayMid: [],
    worker: [],
    relay: [],
    paidLeg: [],
    notVerification: [],
    notGatewayVerify: [],
  };
  let incomplete = 0;
  for (const r of results) {
    const t = observer.times(r.requestId);
    if (!t?.verifyPublished || !t.verifyReplied || !t.jobAdded || !t.replyWritten) {
      incomplete++;
      continue;
    }
    split.gatewayIn.push(t.verifyPublished - r.paidStart);
    split.verification.push(t.verifyReplied - t.verifyPublished);
    if (concurrency === 1) {
      // Chain calls can only be attributed to one request when requests do not overlap.
      const chainMs = callsWithin(calls, t.verifyPublished, t.verifyReplied).reduce((a, [, s, e]) => a + (e - s), 0);
      split.chain.push(chainMs);
      split.verificationOffChain.push(t.verifyReplied - t.verifyPublished - chainMs);
    }
    split.gatewayMid.push(t.jobAdded - t.verifyReplied);
    split.worker.push(t.replyWritten - t.jobAdded);
    split.relay.push(r.end - t.replyWritten);
    split.paidLeg.push(r.paidLegMs);
    split.notVerification.push(r.paidLegMs - (t.verifyReplied - t.verifyPublished));
    if (Number.isFinite(r.gatewayVerifyMs)) split.notGatewayVerify.push(r.paidLegMs - r.gatewayVerifyMs);
  }
  const cpu = cpuDelta(before, after);
  const cpuTotal = Object.values(cpu).reduce((a, b) => a + b, 0);
  // What the services would have burnt idle over the same wall time (see idleCpu), for a background-free figure.
  const idleMs = Object.values(ctx.idle ?? {}).reduce((a, b) => a + b, 0) * snapshotSeconds;
  const procCpu = Object.fromEntries(Object.keys(procAfter).map((k) => [k, procAfter[k] - procBefore[k]]));
  const callsByMethod = {};
  for (const [method, s, e] of calls) {
    callsByMethod[method] ??= { count: 0, ms: [] };
    callsByMethod[method].count++;
    callsByMethod[method].ms.push(e - s);
  }
  return {
    ...paidRunSummary(label, concurrency, n, wallSeconds, results),
    splitMs: Object.fromEntries(Object.entries(split).map(([k, v]) => [k, summary(v)])),
    splitIncomplete: incomplete,
    directUpstreamMs: direct.length ? summary(direct) : null,
    chainCalls: {
      perCharge: round(calls.length / n, 2),
      msPerCharge: round(calls.reduce((a, [, s, e]) => a + e - s, 0) / n),
      byMethod: Object.fromEntries(
        Object.entries(callsByMethod).map(([m, v]) => [m, { perCharge: round(v.count / n, 2), ...summary(v.ms) }]),
      ),
    },
    cpuMsPerCharge: {
      ...Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, round((v * 1000) / n, 2)])),
      total: round((cpuTotal * 1000) / n, 2),
      totalWithoutIdleBackground: ctx.idle ? round((cpuTotal * 1000 - idleMs) / n, 2) : null,
      totalFromProc: round((Object.values(procCpu).reduce((a, b) => a + b, 0) * 1000) / n, 2),
      client: round((client.user + client.system) / 1000 / n, 2),
    },
    // The services' own histograms over the same requests (mean = Δsum/Δcount; p50/p99 interpolated in buckets).
    prometheus: {
      gatewayQuoteMs: histogramDelta(before.gateway, after.gateway, "wr_charge_phase_ms", { phase: "quote" }),
      gatewayVerifyRpcMs: histogramDelta(before.gateway, after.gateway, "wr_charge_phase_ms", { phase: "verify" }),
      gatewayHttpRouteMs: histogramDelta(before.gateway, after.gateway, "wr_http_request_duration_ms", {
        route: "/x402/v1/chat/completions",
      }),
      verifierChecksMs: histogramDelta(before["payment-verifier"], after["payment-verifier"], "wr_charge_verify_phase_ms", {
        phase: "checks",
      }),
      verifierChainMs: histogramDelta(before["payment-verifier"], after["payment-verifier"], "wr_charge_verify_phase_ms", {
        phase: "chain",
      }),
      verifierRecordMs: histogramDelta(before["payment-verifier"], after["payment-verifier"], "wr_charge_verify_phase_ms", {
        phase: "record",
      }),
      inferenceJobMs: histogramDelta(before["inference-worker"], after["inference-worker"], "wr_job_duration_ms", { queue: "inference" }),
      inferenceTtftFromEnqueueMs: histogramDelta(before["inference-worker"], after["inference-worker"], "wr_inference_ttft_ms"),
      settlementBatchSize: histogramDelta(before.settlement, after.settlement, "wr_money_event_batch_size"),
    },
  };
}

async function referencePaidPhase(ctx, mppxUrl, { concurrency, n, label }) {
  const clients = payers(ctx.world, ctx.anvil.rpcUrl);
  await drainProxy(ctx.proxyUrls.mppx);
  const cpuBefore = await referenceCpuSeconds(mppxUrl);
  const clientBefore = process.cpuUsage();
  const started = performance.now();
  const results = await pool(n, concurrency, (i) =>
    paidRequest(
      clients[i % clients.length],
      `${mppxUrl}/v1/chat/completions`,
      chatBody(`${label} reference paid request ${i}: ${promptText(i)}`),
    ),
  );
  const wallSeconds = (performance.now() - started) / 1000;
  const client = process.cpuUsage(clientBefore);
  const cpu = (await referenceCpuSeconds(mppxUrl)) - cpuBefore;
  const calls = await drainProxy(ctx.proxyUrls.mppx);
  const chain = results.map((r) => callsWithin(calls, r.paidStart, r.end).reduce((a, [, s, e]) => a + e - s, 0));
  const counts = {};
  for (const [method] of calls) counts[method] = (counts[method] ?? 0) + 1;
  const byMethod = Object.fromEntries(Object.entries(counts).map(([method, count]) => [method, round(count / n, 2)]));
  return {
    ...paidRunSummary(label, concurrency, n, wallSeconds, results),
    chainMsInPaidLeg: concurrency === 1 ? summary(chain) : null,
    chainCalls: { perCharge: round(calls.length / n, 2), msPerCharge: round(calls.reduce((a, [, s, e]) => a + e - s, 0) / n), byMethod },
    cpuMsPerCharge: { server: round((cpu * 1000) / n, 2), client: round((client.user + client.system) / 1000 / n, 2) },
  };
}

/** Background CPU of each service while no request is in flight (timers, blocking reads, metrics), ms per second. */
async function idleCpu(ctx, seconds = 3) {
  await sleep(500);
  const before = await cpuOfPids(ctx.pids);
  await sleep(seconds * 1000);
  const after = await cpuOfPids(ctx.pids);
  return Object.fromEntries(Object.keys(after).map((k) => [k, round(((after[k] - before[k]) * 1000) / seconds, 2)]));
}

/** Postgres activity of the run's own database (pg_stat_database; other databases on the server do not count). */
async function pgStats() {
  const db = new pg.Client({ connectionString: adminUrl.toString() });
  await db.connect();
  try {
    const { rows } = await db.query(
      "SELECT xact_commit::bigint AS commits, xact_rollback::bigint AS rollbacks, tup_returned::bigint AS returned, tup_fetched::bigint AS fetched, tup_inserted::bigint AS inserted, tup_updated::bigint AS updated, tup_deleted::bigint AS deleted FROM pg_stat_database WHERE datname = $1",
      [databaseUrl.pathname.slice(1)],
    );
    return Object.fromEntries(Object.entries(rows[0] ?? {}).map(([k, v]) => [k, Number(v)]));
  } finally {
    await db.end();
  }
}

/** Round trip of the client's own fetch (what mppx uses) vs node:http, to the plain server: client-side cost in every leg. */
async function clientFetchRtt(plainUrl) {
  const body = chatBody("rtt");
  const viaFetch = [];
  const viaHttp = [];
  for (let i = 0; i < 400; i++) {
    const t = performance.now();
    await (
      await fetch(`${plainUrl}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body })
    ).text();
    viaFetch.push(performance.now() - t);
    viaHttp.push((await post(`${plainUrl}/v1/chat/completions`, body)).ms);
  }
  return { fetchMs: summary(viaFetch.slice(100)), nodeHttpMs: summary(viaHttp.slice(100)) };
}

/** What the timing proxy itself adds per chain call: eth_chainId through it vs straight to anvil. */
async function proxyHop(ctx) {
  const call = async (url) => {
    const t = performance.now();
    const r = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
    });
    await r.text();
    return performance.now() - t;
  };
  const direct = [];
  const proxied = [];
  for (let i = 0; i < 300; i++) {
    direct.push(await call(ctx.anvil.rpcUrl));
    proxied.push(await call(ctx.proxyUrls.mppx));
  }
  await drainProxy(ctx.proxyUrls.mppx);
  const d = summary(direct.slice(50));
  const p = summary(proxied.slice(50));
  return { directMs: d, proxiedMs: p, addedP50Ms: round(p.p50 - d.p50) };
}

// ── phases ───────────────────────────────────────────────────────────────────────────────────────────────────
/** (a) the 402: throughput at c=32 (autocannon) of the gateway and both baselines, then c=1 latency interleaved. */
async function runChallenge(ctx, { mppxUrl, plainUrl, mppxPid, plainPid, profiled }) {
  const gatewayCpu = async () => procCpuSeconds(ctx.pids.gateway);
  const mppxCpu = () => referenceCpuSeconds(mppxUrl);
  const plainCpu = () => referenceCpuSeconds(plainUrl);
  await profileMark("boot", profiled);
  log(`402 throughput at c=${C}, ${SECONDS} s each…`);
  result.challenge = { throughput: {}, latencyC1: {} };
  result.challenge.throughput.gateway = await challengeThroughput("gateway", ctx.chatUrl, ctx.pids.gateway, gatewayCpu);
  result.challenge.throughput.mppx = await challengeThroughput("mppx reference", `${mppxUrl}/v1/chat/completions`, mppxPid, mppxCpu);
  result.challenge.throughput.plain = await challengeThroughput("plain node:http", `${plainUrl}/v1/chat/completions`, plainPid, plainCpu);
  await profileMark("402-c32", profiled);
  log(`402 latency at c=1, ${LATENCY_N} requests each (interleaved)…`);
  result.challenge.latencyC1 = await challengeLatency([
    { name: "gateway", url: ctx.chatUrl, status: 402, cpu: gatewayCpu },
    { name: "mppx", url: `${mppxUrl}/v1/chat/completions`, status: 402, cpu: mppxCpu },
    { name: "plain", url: `${plainUrl}/v1/chat/completions`, status: 402, cpu: plainCpu },
  ]);
}

/** (b)+(c)+(d) paid requests: ours and mppx's at c=1 and c=32, then the Redis/Postgres diagnostics. */
async function runPaid(ctx, { mppxUrl, plainUrl, profiled }) {
  const pgBefore = await pgStats();
  result.idleCpuMsPerSecond = await idleCpu(ctx);
  ctx.idle = result.idleCpuMsPerSecond;
  observer = new PaymentPathObserver(redisUrl, namespace);
  await observer.start();
  log("paid: warm-up…");
  const warmClients = payers(ctx.world, ctx.anvil.rpcUrl);
  await paidRequest(warmClients[0], ctx.chatUrl, chatBody("warm-up 0"));
  await observer.addReplyStreams();
  await pool(16, 8, (i) => paidRequest(warmClients[i % warmClients.length], ctx.chatUrl, chatBody(`warm-up ${i + 1}`)));
  await pool(16, 8, (i) => paidRequest(warmClients[i % warmClients.length], `${mppxUrl}/v1/chat/completions`, chatBody(`warm-up ${i}`)));
  result.proxyHop = await proxyHop(ctx);
  result.clientRtt = await clientFetchRtt(plainUrl);
  await profileMark("paid-warmup", profiled);

  log(`paid: ${PAID_N} at c=1 through our services (with the same body straight to the fake upstream after each)…`);
  result.paid = {};
  result.paid.c1 = await paidPhase(ctx, observer, { concurrency: 1, n: PAID_N, label: "c1" });
  await profileMark("paid-c1", profiled);
  log(`paid: ${PAID_N} at c=1 through the mppx reference server…`);
  result.paid.referenceC1 = await referencePaidPhase(ctx, mppxUrl, { concurrency: 1, n: PAID_N, label: "c1" });
  await profileMark("reference-c1", profiled);
  log(`paid: ${PAID_CONCURRENT_N} at c=${C} through our services…`);
  result.paid.c32 = await paidPhase(ctx, observer, { concurrency: C, n: PAID_CONCURRENT_N, label: "c32" });
  await profileMark("paid-c32", profiled);
  log(`paid: ${PAID_CONCURRENT_N} at c=${C} through the mppx reference server…`);
  result.paid.referenceC32 = await referencePaidPhase(ctx, mppxUrl, { concurrency: C, n: PAID_CONCURRENT_N, label: "c32" });
  await profileMark("reference-c32", profiled);

  // Diagnostics (nothing timed): Redis commands per paid charge by process, with MONITOR; then Postgres
  // activity per paid charge over every paid request of the run (stats reach pg_stat_database within ~10 s).
  await observer.stop();
  observer = undefined;
  const MONITORED = 48;
  log(`diagnostics: Redis commands of ${MONITORED} paid charges (MONITOR), Postgres activity per charge…`);
  const monitorClients = payers(ctx.world, ctx.anvil.rpcUrl);
  const before = await servicesSnapshot(ctx);
  const monitored = await monitorRedis(redisUrl, namespace, ctx.pids, async () => {
    await pool(MONITORED, 8, (i) =>
      paidRequest(monitorClients[i % monitorClients.length], ctx.chatUrl, chatBody(`monitored paid request ${i}`)),
    );
    await waitForJobs(ctx, before, MONITORED);
  });
  result.redisCommandsPerCharge = Object.fromEntries(
    Object.entries(monitored.counts).map(([who, counts]) => [
      who,
      Object.fromEntries(
        Object.entries(counts)
          .sort((a, b) => b[1] - a[1])
          .map(([c, n]) => [c, round(n / MONITORED, 2)]),
      ),
    ]),
  );
  await sleep(11_000);
  const pgAfter = await pgStats();
  const ourPaid = 1 + 16 + PAID_N + PAID_CONCURRENT_N + MONITORED;
  result.postgresPerCharge = Object.fromEntries(Object.keys(pgAfter).map((k) => [k, round((pgAfter[k] - pgBefore[k]) / ourPaid, 2)]));
}

// ── main ─────────────────────────────────────────────────────────────────────────────────────────────────────
const result = {
  benchmark: "charge",
  date: new Date().toISOString(),
  node: process.version,
  cpus: availableParallelism(),
  cpuModel: cpus()[0]?.model,
  loadAverageAtStart: loadavg().map((x) => round(x, 2)),
  targets: TARGETS,
};
let ctx;
let observer;
try {
  ctx = await setUp();
  result.setup = {
    services: `gateway, payment-verifier, inference-worker, settlement: built dist via dev-runner startSystem, NODE_ENV=production, LOG_LEVEL=${process.env.LOG_LEVEL ?? "info"}`,
    chain: "anvil --network tempo (T4, mixed mining), reached by both servers through a JSON-RPC timing proxy (separate process)",
    upstream: "tools/fake-upstream (separate process), zero latency, 32 completion tokens, non-streaming",
    clients:
      "this process: autocannon (c=32 throughput), node:http keep-alive (c=1 latency), unmodified mppx client in pull mode (fee-sponsored)",
    quick: QUICK,
  };

  // Baselines: the gateway's own 402 (status, headers, body) served by a bare node:http handler, and mppx.
  const sample = await post(ctx.chatUrl, chatBody(promptText(1)));
  if (sample.status !== 402) throw new Error(`gateway answered ${sample.status} without payment: ${sample.body}`);
  if (process.env.BENCH_DUMP_402) writeFileSync(process.env.BENCH_DUMP_402, JSON.stringify(sample, null, 2));
  writeFileSync(
    join(scratch, "plain.json"),
    JSON.stringify({
      status: 402,
      headers: {
        "content-type": sample.headers["content-type"],
        "www-authenticate": sample.headers["www-authenticate"],
        "cache-control": "no-store",
      },
      body: sample.body,
    }),
  );
  const completionSample = await (
    await fetch(`${ctx.fakeUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer bench" },
      body: chatBody("sample"),
    })
  ).text();
  writeFileSync(
    join(scratch, "mppx.json"),
    JSON.stringify({
      rpcUrl: ctx.proxyUrls.mppx,
      chainId: ctx.world.chainId,
      token: ctx.world.token.address,
      recipient: ctx.world.payee.address,
      feePayerPrivateKey: ctx.world.feePayer.privateKey,
      secretKey: ctx.secretKey,
      realm: "127.0.0.1",
      amount: "0.000012",
      completion: completionSample,
    }),
  );
  const plain = await startChild("plain server", ["bench/support/reference-server.mjs", "plain", join(scratch, "plain.json")], {
    ready: /reference plain ready (\S+)\n/,
  });
  children.push(plain.child);
  const mppxRef = await startChild("mppx reference", ["bench/support/reference-server.mjs", "mppx", join(scratch, "mppx.json")], {
    ready: /reference mppx ready (\S+)\n/,
    env: PROFILE_DIR
      ? { NODE_OPTIONS: `--import=${join(ROOT, "bench/support/cpu-profiler.mjs")}`, BENCH_CPU_PROFILE_DIR: PROFILE_DIR }
      : {},
  });
  children.push(mppxRef.child);
  const plainUrl = plain.match[1];
  const mppxUrl = mppxRef.match[1];
  const mppxCheck = await post(`${mppxUrl}/v1/chat/completions`, chatBody("check"));
  if (mppxCheck.status !== 402 || !/^Payment /.test(mppxCheck.headers["www-authenticate"] ?? ""))
    throw new Error(`mppx reference answered ${mppxCheck.status}`);

  // (c, in-process part) CPU of each step of the 402 path, built gateway classes, this process.
  const profiled = [...Object.values(ctx.pids), mppxRef.child.pid];
  if (PHASES.has("steps")) {
    log("gateway steps, in-process…");
    result.gatewaySteps = await measureGatewaySteps(ctx.config);
  }

  if (PHASES.has("challenge"))
    await runChallenge(ctx, { mppxUrl, plainUrl, mppxPid: mppxRef.child.pid, plainPid: plain.child.pid, profiled });
  if (PHASES.has("paid")) await runPaid(ctx, { mppxUrl, plainUrl, profiled });

  result.rss = {
    ...Object.fromEntries(Object.entries(ctx.pids).map(([k, pid]) => [k, round(procRssBytes(pid) / 2 ** 20, 1)])),
    mppxReference: round(procRssBytes(mppxRef.child.pid) / 2 ** 20, 1),
  };
  result.logLines = serviceLines;
  result.loadAverageAtEnd = loadavg().map((x) => round(x, 2));
} catch (err) {
  log(`charge benchmark failed: ${err.stack ?? err}`);
  if (recentLines.length)
    log(
      recentLines
        .slice(-30)
        .map((l) => l.slice(0, 400))
        .join("\n"),
    );
  process.exitCode = 1;
} finally {
  await observer?.stop().catch(() => undefined);
  await teardown().catch((err) => log(`teardown: ${err.stack ?? err}`));
}

if (process.exitCode !== 1) {
  if (FULL) report(result);
  else process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

// ── report ───────────────────────────────────────────────────────────────────────────────────────────────────
function report(r) {
  const ok = (pass) => (pass ? "✓ met" : "✗ missed");
  const gw = r.challenge.throughput.gateway;
  const c1 = r.paid.c1;
  const c32 = r.paid.c32;
  const overhead = {
    // Paid leg minus the verifier's span: everything the request spends outside payment verification …
    notVerificationMs: c1.splitMs.notVerification,
    // … minus what calling the fake upstream directly takes (medians/p99s of the interleaved direct calls).
    addedP50Ms: c1.splitMs.notVerification.n ? round(c1.splitMs.notVerification.p50 - c1.directUpstreamMs.p50) : null,
    addedP99Ms: c1.splitMs.notVerification.n ? round(c1.splitMs.notVerification.p99 - c1.directUpstreamMs.p99) : null,
  };
  r.gatewayOverhead = overhead;
  const atLeast = (x, target) => typeof x === "number" && x >= target;
  const atMost = (x, target) => typeof x === "number" && x <= target;
  r.verdict = {
    challengePerSecondC32: atLeast(gw.perSecond, TARGETS.challengePerSecondC32),
    challengeP99MsC1: atMost(r.challenge.latencyC1.gateway.p99, TARGETS.challengeP99MsC1),
    cpuMsPerPaidCharge: atMost(c32.cpuMsPerCharge.total, TARGETS.cpuMsPerPaidCharge),
    gatewayOverheadP50Ms: atMost(overhead.addedP50Ms, TARGETS.gatewayOverheadP50Ms),
    gatewayOverheadP99Ms: atMost(overhead.addedP99Ms, TARGETS.gatewayOverheadP99Ms),
  };

  const T = r.challenge.throughput;
  const L = r.challenge.latencyC1;
  const out = [];
  out.push(
    `\ncharge: ${r.cpus} cores (${r.cpuModel}), load average at start ${r.loadAverageAtStart.join(" ")}, Node ${r.node}${r.setup.quick ? " (quick)" : ""}\n`,
  );
  out.push("(a) 402 challenge");
  out.push(
    table([
      ["", "gateway", "mppx reference", "plain node:http", "target (gateway)"],
      [
        `req/s at c=${gw.connections}`,
        T.gateway.perSecond,
        T.mppx.perSecond,
        T.plain.perSecond,
        `≥ ${TARGETS.challengePerSecondC32} ${ok(r.verdict.challengePerSecondC32)}`,
      ],
      [
        `  server CPU µs/req (c=${gw.connections})`,
        T.gateway.serverCpuUsPerRequest,
        T.mppx.serverCpuUsPerRequest,
        T.plain.serverCpuUsPerRequest,
        "",
      ],
      [
        `  server / client cores busy`,
        `${T.gateway.serverCpuCores} / ${T.gateway.clientCpuCores}`,
        `${T.mppx.serverCpuCores} / ${T.mppx.clientCpuCores}`,
        `${T.plain.serverCpuCores} / ${T.plain.clientCpuCores}`,
        "",
      ],
      ["c=1 p50 (ms)", L.gateway.p50, L.mppx.p50, L.plain.p50, ""],
      ["c=1 p99 (ms)", L.gateway.p99, L.mppx.p99, L.plain.p99, `≤ ${TARGETS.challengeP99MsC1} ${ok(r.verdict.challengeP99MsC1)}`],
      ["  server CPU µs/req (c=1)", L.gateway.serverCpuUsPerRequest, L.mppx.serverCpuUsPerRequest, L.plain.serverCpuUsPerRequest, ""],
    ]),
  );
  out.push("\n(b) paid request (mppx client, pull, fee-sponsored): end to end = 402 + credential (client signs) + paid retry");
  const ref1 = r.paid.referenceC1;
  const ref32 = r.paid.referenceC32;
  out.push(
    table([
      ["", "ours c=1", "mppx ref c=1", `ours c=${C}`, `mppx ref c=${C}`],
      ["end to end p50 (ms)", c1.endToEndMs.p50, ref1.endToEndMs.p50, c32.endToEndMs.p50, ref32.endToEndMs.p50],
      ["end to end p99 (ms)", c1.endToEndMs.p99, ref1.endToEndMs.p99, c32.endToEndMs.p99, ref32.endToEndMs.p99],
      ["  402 leg p50", c1.legsMs.challenge.p50, ref1.legsMs.challenge.p50, c32.legsMs.challenge.p50, ref32.legsMs.challenge.p50],
      [
        "  client credential p50",
        c1.legsMs.credential.p50,
        ref1.legsMs.credential.p50,
        c32.legsMs.credential.p50,
        ref32.legsMs.credential.p50,
      ],
      ["  paid leg p50", c1.legsMs.paid.p50, ref1.legsMs.paid.p50, c32.legsMs.paid.p50, ref32.legsMs.paid.p50],
      ["  paid leg p99", c1.legsMs.paid.p99, ref1.legsMs.paid.p99, c32.legsMs.paid.p99, ref32.legsMs.paid.p99],
      ["paid charges/s", c1.chargesPerSecond, ref1.chargesPerSecond, c32.chargesPerSecond, ref32.chargesPerSecond],
      ["chain calls per charge", c1.chainCalls.perCharge, ref1.chainCalls.perCharge, c32.chainCalls.perCharge, ref32.chainCalls.perCharge],
      [
        "chain ms per charge (mean)",
        c1.chainCalls.msPerCharge,
        ref1.chainCalls.msPerCharge,
        c32.chainCalls.msPerCharge,
        ref32.chainCalls.msPerCharge,
      ],
    ]),
  );
  out.push(
    `\npaid leg split (ours), from the Redis hand-offs seen by a passive observer + the chain proxy; proxy hop ≈ ${r.proxyHop.addedP50Ms} ms per chain call;`,
  );
  out.push(
    `client fetch round trip to the plain server p50 ${r.clientRtt.fetchMs.p50} ms (node:http ${r.clientRtt.nodeHttpMs.p50} ms): part of "gateway in" + "relay"`,
  );
  const S1 = c1.splitMs;
  const S32 = c32.splitMs;
  const rows = [["", "c=1 p50", "c=1 p99", `c=${C} p50`, `c=${C} p99`]];
  const names = {
    gatewayIn: "gateway in (HTTP → verify RPC published)",
    verification: "verification (RPC request → reply)",
    chain: "  of which chain calls",
    verificationOffChain: "  of which off-chain (checks, Redis, DB, queue)",
    gatewayMid: "gateway (verify reply → inference job added)",
    worker: "worker (job added → reply written: pick-up + upstream)",
    relay: "relay (reply written → client has body)",
    paidLeg: "paid leg total",
  };
  for (const [k, label] of Object.entries(names)) rows.push([label, S1[k].p50, S1[k].p99, S32[k].p50, S32[k].p99]);
  rows.push(["fake upstream called directly", c1.directUpstreamMs.p50, c1.directUpstreamMs.p99, "", ""]);
  out.push(table(rows));
  const P1 = c1.prometheus;
  const P32 = c32.prometheus;
  const prom = (h) => (h?.count ? [h.mean, h.p50, h.p99] : ["—", "—", "—"]);
  out.push("\nsame requests, from the services' own Prometheus histograms (mean = Δsum/Δcount; p50/p99 interpolated within buckets)");
  out.push(
    table([
      ["histogram", "c=1 mean", "c=1 p50", "c=1 p99", `c=${C} mean`, `c=${C} p50`, `c=${C} p99`],
      ["gateway wr_charge_phase_ms{quote}", ...prom(P1.gatewayQuoteMs), ...prom(P32.gatewayQuoteMs)],
      ["gateway wr_charge_phase_ms{verify}", ...prom(P1.gatewayVerifyRpcMs), ...prom(P32.gatewayVerifyRpcMs)],
      ["verifier wr_charge_verify_phase_ms{checks}", ...prom(P1.verifierChecksMs), ...prom(P32.verifierChecksMs)],
      ["verifier wr_charge_verify_phase_ms{chain}", ...prom(P1.verifierChainMs), ...prom(P32.verifierChainMs)],
      ["verifier wr_charge_verify_phase_ms{record}", ...prom(P1.verifierRecordMs), ...prom(P32.verifierRecordMs)],
      ["worker wr_job_duration_ms{inference}", ...prom(P1.inferenceJobMs), ...prom(P32.inferenceJobMs)],
      ["worker wr_inference_ttft_ms (from enqueue)", ...prom(P1.inferenceTtftFromEnqueueMs), ...prom(P32.inferenceTtftFromEnqueueMs)],
      ["settlement wr_money_event_batch_size", ...prom(P1.settlementBatchSize), ...prom(P32.settlementBatchSize)],
      ["gateway wr_http_request_duration_ms (402s + paid)", ...prom(P1.gatewayHttpRouteMs), ...prom(P32.gatewayHttpRouteMs)],
    ]),
  );
  out.push("\n(c) gateway overhead on the verified path (c=1): paid leg − verification span − direct upstream call");
  out.push(
    table([
      ["", "p50 (ms)", "p99 (ms)", "target"],
      ["paid leg − verification", overhead.notVerificationMs.p50, overhead.notVerificationMs.p99, ""],
      ["fake upstream directly", c1.directUpstreamMs.p50, c1.directUpstreamMs.p99, ""],
      [
        "added by our path",
        overhead.addedP50Ms,
        overhead.addedP99Ms,
        `p50 ≤ ${TARGETS.gatewayOverheadP50Ms} ${ok(r.verdict.gatewayOverheadP50Ms)}, p99 ≤ ${TARGETS.gatewayOverheadP99Ms} ${ok(r.verdict.gatewayOverheadP99Ms)}`,
      ],
      ...(c1.splitMs.notGatewayVerify?.n
        ? [
            [
              "  diagnostic: with the gateway's own verify span (Server-Timing)",
              round(c1.splitMs.notGatewayVerify.p50 - c1.directUpstreamMs.p50),
              round(c1.splitMs.notGatewayVerify.p99 - c1.directUpstreamMs.p99),
              "(not the verdict)",
            ],
          ]
        : []),
    ]),
  );
  out.push("\n    in-process CPU of the 402 path's steps (built gateway classes, µs per call)");
  out.push(table([["step", "µs"], ...Object.entries(r.gatewaySteps.perCallUs).map(([k, v]) => [k, v])]));
  out.push("\n(d) server CPU per paid charge (402 + paid leg + async jobs), process_cpu_seconds_total deltas");
  out.push(
    table([
      ["ms CPU per charge", "c=1", `c=${C}`, "target"],
      ["gateway", c1.cpuMsPerCharge.gateway, c32.cpuMsPerCharge.gateway, ""],
      ["payment-verifier", c1.cpuMsPerCharge["payment-verifier"], c32.cpuMsPerCharge["payment-verifier"], ""],
      ["inference-worker", c1.cpuMsPerCharge["inference-worker"], c32.cpuMsPerCharge["inference-worker"], ""],
      ["settlement", c1.cpuMsPerCharge.settlement, c32.cpuMsPerCharge.settlement, ""],
      [
        "all services",
        c1.cpuMsPerCharge.total,
        c32.cpuMsPerCharge.total,
        `≤ ${TARGETS.cpuMsPerPaidCharge} ${ok(r.verdict.cpuMsPerPaidCharge)}`,
      ],
      ["  (same, from /proc)", c1.cpuMsPerCharge.totalFromProc, c32.cpuMsPerCharge.totalFromProc, ""],
      [
        "  minus idle background",
        c1.cpuMsPerCharge.totalWithoutIdleBackground,
        c32.cpuMsPerCharge.totalWithoutIdleBackground,
        `(idle: ${Object.values(r.idleCpuMsPerSecond ?? {})
          .reduce((a, b) => a + b, 0)
          .toFixed(1)} ms CPU/s)`,
      ],
      ["mppx reference server", ref1.cpuMsPerCharge.server, ref32.cpuMsPerCharge.server, ""],
      ["client (this process)", c1.cpuMsPerCharge.client, c32.cpuMsPerCharge.client, ""],
    ]),
  );
  if (r.redisCommandsPerCharge) {
    const total = (counts) =>
      round(
        Object.values(counts).reduce((a, b) => a + b, 0),
        1,
      );
    out.push("\ndiagnostics: Redis commands per paid charge (MONITOR), by process — top commands");
    out.push(
      table([
        ["process", "total", "top commands"],
        ...Object.entries(r.redisCommandsPerCharge).map(([who, counts]) => [
          who,
          total(counts),
          Object.entries(counts)
            .slice(0, 6)
            .map(([c, n]) => `${c} ${n}`)
            .join(", "),
        ]),
      ]),
    );
  }
  if (r.postgresPerCharge) {
    out.push(
      `Postgres per paid charge (pg_stat_database of the run's DB): ${Object.entries(r.postgresPerCharge)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
    );
  }
  out.push(
    `\nload average at end ${r.loadAverageAtEnd.join(" ")}; RSS MiB ${Object.entries(r.rss)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}\n`,
  );
  process.stdout.write(`${out.join("\n")}\n`);
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(join(ROOT, "bench/results/charge.json"), `${JSON.stringify(r, null, 2)}\n`);
  log("wrote bench/results/charge.json");
}

/** The fields every paid run reports, ours and mppx's alike. */
function paidRunSummary(label, concurrency, n, wallSeconds, results) {
  return {
    label,
    concurrency,
    n,
    wallSeconds: round(wallSeconds, 2),
    chargesPerSecond: round(n / wallSeconds, 1),
    endToEndMs: summary(results.map((r) => r.totalMs)),
    legsMs: {
      challenge: summary(results.map((r) => r.challengeMs)),
      credential: summary(results.map((r) => r.credentialMs)),
      paid: summary(results.map((r) => r.paidLegMs)),
    },
  };
}
