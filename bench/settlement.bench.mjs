#!/usr/bin/env node
/**
 * Settlement throughput: money events applied per second and settlement CPU per event, with the events injected
 * straight into the money-event stream (no gateway, verifier or worker work in the figure), against a baseline in the
 * same run: the BullMQ floor, i.e. one BullMQ job per event through a Worker that does nothing with it (the path the
 * pipeline replaced ran one job, plus one transaction, per event: its cost was at least this floor).
 *
 *   node bench/settlement.bench.mjs [--payments 4000] [--replicas 1] [--bullmq-jobs 6000]
 *
 * Each payment is three events, as a charge makes them: charge.verified, inference.started, inference.usage; its
 * `charge_payments` row (the verifier's write) is inserted first, in bulk. The clock runs from the first XADD to the
 * moment settlement's `wr_money_events_applied_total` counts every event; CPU is the settlement processes' own
 * (/proc), Postgres' and Redis' CPU are not in it. Needs the built dist, Postgres and Redis (DATABASE_URL's server,
 * REDIS_URL); a throwaway database `wr_bench_<run>` and Redis namespace `wrbench-<run>`, removed at the end.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import pg from "pg";
import { moneyEventStreamKey, MONEY_EVENT_FIELD } from "@worldrouter/contracts";
import { startSystem } from "@worldrouter/dev-runner";
import { throwawayStores } from "./support/throwaway.mjs";
import { log, metricValue, procCpuSeconds, ROOT, round, scrape, sleep, startChild, table } from "./support/common.mjs";

const { values: args } = parseArgs({
  options: {
    payments: { type: "string", default: "4000" },
    replicas: { type: "string", default: "1" },
    "bullmq-jobs": { type: "string", default: "6000" },
  },
});
const PAYMENTS = Number(args.payments);
const REPLICAS = Number(args.replicas);
const BULLMQ_JOBS = Number(args["bullmq-jobs"]);
const EVENTS = PAYMENTS * 3;
const TARGETS = { eventsPerSecond: 2_000, cpuMsPerEvent: 0.3 };

const { run, databaseUrl, redisUrl, namespace, scratch, remove } = throwawayStores();

let system;
const recentLines = [];
async function teardown() {
  if (system) await system.stop().catch((err) => log(`system stop: ${err.message}`));
  await remove();
}
process.once("SIGINT", () => teardown().finally(() => process.exit(130)));

const address = () => `0x${randomBytes(20).toString("hex")}`;
const hash = () => `0x${randomBytes(32).toString("hex")}`;

/** One charge's three events (and its verifier-written row), shaped as the services publish them. */
function charge(world) {
  const now = Date.now();
  const paymentId = randomUUID();
  const requestId = `req_${randomBytes(12).toString("hex")}`;
  const payer = address();
  const amount = "2500";
  const row = { paymentId, challengeId: `ch_${randomBytes(12).toString("hex")}`, txHash: hash(), requestId, payer, amount };
  const facts = { requestId, model: "gpt-4o-mini", provider: "openai", intent: "charge", payer, chargePaymentId: paymentId };
  const events = [
    {
      kind: "charge.verified",
      paymentId,
      challengeId: row.challengeId,
      requestId,
      txHash: row.txHash,
      payer,
      recipient: world.payee.address,
      token: world.token.address,
      chainId: world.chainId,
      amount,
      blockNumber: "1",
      verifiedAt: now,
    },
    { kind: "inference.started", ...facts, estimatedCost: "12", chargedCost: amount, startedAt: now },
    {
      kind: "inference.usage",
      ...facts,
      status: "succeeded",
      promptTokens: 20,
      completionTokens: 120,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      estimatedCost: "12",
      chargedCost: amount,
      finishReason: "stop",
      errorClass: null,
      ttftMs: 40,
      latencyMs: 300,
      completedAt: now,
    },
  ];
  return { row, events };
}

async function insertPaymentRows(db, world, rows) {
  for (let i = 0; i < rows.length; i += 2_000) {
    const chunk = rows.slice(i, i + 2_000);
    await db.query(
      `INSERT INTO "charge_payments" ("id", "challengeId", "txHash", "requestId", "payer", "recipient", "token", "chainId", "amount",
         "blockNumber", "status", "updatedAt")
       SELECT r.id::uuid, r.challenge, r.tx, r.request, r.payer, $6, $7, $8, r.amount::numeric, 1, 'verified', now()
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $9::text[]) AS r(id, challenge, tx, request, payer, amount)`,
      [
        chunk.map((r) => r.paymentId),
        chunk.map((r) => r.challengeId),
        chunk.map((r) => r.txHash),
        chunk.map((r) => r.requestId),
        chunk.map((r) => r.payer),
        world.payee.address,
        world.token.address,
        world.chainId,
        chunk.map((r) => r.amount),
      ],
    );
  }
}

const appliedTotal = async (urls) => {
  let total = 0;
  for (const url of urls) total += metricValue(await scrape(`${url}/metrics`), "wr_money_events_applied_total") ?? 0;
  return total;
};

/** The pipeline: inject every event (pipelined XADDs, in charge order), wait until settlement applied them all. */
async function measurePipeline(world, settlements) {
  const db = new pg.Client({ connectionString: databaseUrl.toString() });
  await db.connect();
  const charges = Array.from({ length: PAYMENTS }, () => charge(world));
  await insertPaymentRows(
    db,
    world,
    charges.map((c) => c.row),
  );
  const urls = settlements.map((s) => s.url);
  const pids = settlements.map((s) => s.child.pid);
  const appliedBefore = await appliedTotal(urls);
  const redis = new Redis(redisUrl);
  const key = moneyEventStreamKey(namespace);
  const cpuBefore = pids.reduce((sum, pid) => sum + procCpuSeconds(pid), 0);
  const started = performance.now();
  for (let i = 0; i < charges.length; i += 500) {
    const pipeline = redis.pipeline();
    for (const { events } of charges.slice(i, i + 500))
      for (const event of events) pipeline.xadd(key, "*", MONEY_EVENT_FIELD, JSON.stringify(event));
    await pipeline.exec();
  }
  const injectedMs = performance.now() - started;
  let applied = 0;
  const deadline = Date.now() + 600_000;
  while ((applied = (await appliedTotal(urls)) - appliedBefore) < EVENTS) {
    if (Date.now() > deadline) throw new Error(`only ${applied} of ${EVENTS} events applied after 10 minutes`);
    await sleep(20);
  }
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = pids.reduce((sum, pid) => sum + procCpuSeconds(pid), 0) - cpuBefore;
  // The ledger really holds them: every payment consumed, every request completed, postings balanced.
  const { rows } = await db.query(
    `SELECT (SELECT count(*)::int FROM "charge_payments" WHERE "status" = 'consumed') AS consumed,
            (SELECT count(*)::int FROM "inference_requests" WHERE "status" = 'succeeded') AS completed,
            (SELECT count(*)::int FROM "settlements" WHERE "kind" = 'charge') AS settlements`,
  );
  await db.end();
  redis.disconnect();
  const ledger = rows[0];
  if (ledger.consumed !== PAYMENTS || ledger.completed !== PAYMENTS || ledger.settlements !== PAYMENTS)
    throw new Error(`ledger does not hold every event: ${JSON.stringify(ledger)} (expected ${PAYMENTS} each)`);
  return {
    events: EVENTS,
    seconds: round(seconds, 2),
    injectMs: round(injectedMs, 0),
    eventsPerSecond: Math.round(EVENTS / seconds),
    cpuMsPerEvent: round((cpuSeconds * 1000) / EVENTS, 4),
    ledger,
  };
}

/**
 * The floor of one BullMQ job per event: jobs added in bulk by this process, consumed by a Worker (concurrency 16)
 * in a child process that does nothing with them; CPU is the child's, as the pipeline's is settlement's.
 */
async function measureBullmqFloor() {
  const connection = { url: redisUrl };
  const prefix = `${namespace}:bullfloor`;
  const queue = new Queue("money", { connection, prefix });
  const workerScript = `
    import { Worker } from "bullmq";
    const [total, url, prefix] = process.argv.slice(1);
    let done = 0;
    const worker = new Worker("money", async () => undefined, { connection: { url }, prefix, concurrency: 16 });
    worker.on("completed", async () => {
      if (++done < Number(total)) return;
      const cpu = process.cpuUsage(cpuAtReady);
      await worker.close();
      process.stdout.write("done " + (cpu.user + cpu.system) + "\\n");
      process.exit(0);
    });
    await worker.waitUntilReady();
    const cpuAtReady = process.cpuUsage();
    process.stdout.write("ready\\n");`;
  const child = await startChild("bullmq worker", ["--input-type=module", "-e", workerScript, String(BULLMQ_JOBS), redisUrl, prefix], {
    ready: /ready\n/,
  });
  // The worker reports its own CPU (µs) since it was ready, on its last line.
  const finished = new Promise((resolve, reject) => {
    let out = "";
    child.child.stdout.on("data", (d) => {
      out += d;
      const done = /done (\d+)\n/.exec(out);
      if (done) resolve(Number(done[1]));
    });
    child.child.once("exit", (code) => reject(new Error(`bullmq worker exited (${code}) before it finished`)));
  });
  const started = performance.now();
  for (let i = 0; i < BULLMQ_JOBS; i += 500)
    await queue.addBulk(
      Array.from({ length: Math.min(500, BULLMQ_JOBS - i) }, (_, j) => ({
        name: "event",
        data: { kind: "inference.usage", n: i + j },
        opts: { removeOnComplete: true },
      })),
    );
  const cpuMicros = await finished;
  const seconds = (performance.now() - started) / 1000;
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  return {
    events: BULLMQ_JOBS,
    seconds: round(seconds, 2),
    eventsPerSecond: Math.round(BULLMQ_JOBS / seconds),
    cpuMsPerEvent: round(cpuMicros / 1000 / BULLMQ_JOBS, 4),
  };
}

try {
  const load = loadavg().map((x) => round(x, 2));
  log(`run ${run}: ${PAYMENTS} payments (${EVENTS} events), ${REPLICAS} settlement replica(s); load ${load.join(" ")}`);
  system = await startSystem({
    env: { ...process.env, NODE_ENV: "test", LOG_LEVEL: "warn", DATABASE_URL: databaseUrl.toString(), REDIS_NAMESPACE: namespace },
    worldFile: join(scratch, "world.json"),
    freePorts: true,
    replicas: { gateway: 1, "payment-verifier": 1, "inference-worker": 1, settlement: REPLICAS },
    onLine: (source, line) => {
      recentLines.push(`${source} | ${line}`);
      if (recentLines.length > 100) recentLines.shift();
    },
  });
  const pipeline = await measurePipeline(system.world, system.replicas.settlement);
  const bullmq = await measureBullmqFloor();
  const rows = [
    ["path", "events", "seconds", "events/s", "CPU ms/event (its process)"],
    [
      `money-event stream → settlement ×${REPLICAS} (batched SQL)`,
      pipeline.events,
      pipeline.seconds,
      pipeline.eventsPerSecond,
      pipeline.cpuMsPerEvent,
    ],
    ["baseline: BullMQ, one no-op job per event", bullmq.events, bullmq.seconds, bullmq.eventsPerSecond, bullmq.cpuMsPerEvent],
  ];
  process.stdout.write(`\n${table(rows)}\n`);
  const verdict = {
    eventsPerSecond: pipeline.eventsPerSecond >= TARGETS.eventsPerSecond,
    cpuMsPerEvent: pipeline.cpuMsPerEvent <= TARGETS.cpuMsPerEvent,
  };
  process.stdout.write(
    `targets: ≥ ${TARGETS.eventsPerSecond} events/s ${verdict.eventsPerSecond ? "met" : "MISSED"}; ≤ ${TARGETS.cpuMsPerEvent} ms CPU/event ${
      verdict.cpuMsPerEvent ? "met" : "MISSED"
    }; pipeline vs BullMQ floor: ${round(pipeline.eventsPerSecond / bullmq.eventsPerSecond, 2)}× the rate, ${round(
      pipeline.cpuMsPerEvent / bullmq.cpuMsPerEvent,
      2,
    )}× the CPU per event\n`,
  );
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(
    join(ROOT, "bench/results/settlement.json"),
    `${JSON.stringify({ run, at: new Date().toISOString(), loadAtStart: load, loadAtEnd: loadavg(), targets: TARGETS, pipeline, bullmq, verdict }, null, 2)}\n`,
  );
} catch (err) {
  process.stderr.write(`${err.stack}\n${recentLines.slice(-30).join("\n")}\n`);
  process.exitCode = 1;
} finally {
  await teardown();
}
