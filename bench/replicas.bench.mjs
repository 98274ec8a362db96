#!/usr/bin/env node
/**
 * One replica of every service vs two, on this machine: paid charges per second and server CPU per paid charge (all
 * service processes, from /proc, until settlement has billed every charge), the same load against each system in one
 * run. No target (issue 11): on a 2-core box two replicas cannot scale; the figure shows what coordination costs.
 *
 *   node bench/replicas.bench.mjs [--charges 200] [--concurrency 16]
 *
 * Each system: `startSystem` (local Tempo chain, fake upstream, built services, NODE_ENV=test), a throwaway database
 * and Redis namespace, removed at the end. Clients: the unmodified mppx client (pull mode, fee-sponsored), spread over
 * the gateways.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Mppx, tempo } from "mppx/client";
import pg from "pg";
import { privateKeyToAccount } from "viem/accounts";
import { createTempoClients } from "@worldrouter/chain";
import { startSystem } from "@worldrouter/dev-runner";
import { throwawayStores } from "./support/throwaway.mjs";
import { log, pool, procCpuSeconds, RATE_LIMITS_OFF, ROOT, round, sleep, table } from "./support/common.mjs";

const { values: args } = parseArgs({
  options: { charges: { type: "string", default: "200" }, concurrency: { type: "string", default: "16" } },
});
const CHARGES = Number(args.charges);
const CONCURRENCY = Number(args.concurrency);

async function measure(replicas) {
  const { databaseUrl, namespace, scratch, remove } = throwawayStores();
  const lines = [];
  let system;
  try {
    system = await startSystem({
      env: {
        ...process.env,
        ...RATE_LIMITS_OFF,
        NODE_ENV: "test",
        LOG_LEVEL: "warn",
        DATABASE_URL: databaseUrl.toString(),
        REDIS_NAMESPACE: namespace,
      },
      worldFile: join(scratch, "world.json"),
      freePorts: true,
      replicas,
      onLine: (source, line) => {
        lines.push(`${source} | ${line}`);
        if (lines.length > 100) lines.shift();
      },
    });
    const { world, gatewayUrls } = system;
    const payers = world.wallets.map((wallet) => {
      const account = privateKeyToAccount(wallet.privateKey);
      const clients = createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address });
      return Mppx.create({
        polyfill: false,
        methods: [tempo.charge({ account, getClient: () => clients.publicClient, expectedChainId: world.chainId, mode: "pull" })],
      });
    });
    const charge = async (i, label) => {
      const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `${label} ${i}` }] });
      const response = await payers[i % payers.length].fetch(`${gatewayUrls[i % gatewayUrls.length]}/x402/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      await response.text();
      if (response.status !== 200) throw new Error(`charge ${i}: ${response.status}`);
    };
    await pool(2 * gatewayUrls.length, 2, (i) => charge(i, "warm-up"));
    const db = new pg.Client({ connectionString: databaseUrl.toString() });
    await db.connect();
    const billed = async () => (await db.query(`SELECT count(*)::int AS n FROM inference_requests WHERE status = 'succeeded'`)).rows[0].n;
    const warmBilled = 2 * gatewayUrls.length;
    while ((await billed()) < warmBilled) await sleep(50);

    const pids = system.services.map((s) => s.child.pid);
    const cpu = () => pids.reduce((sum, pid) => sum + procCpuSeconds(pid), 0);
    const cpuBefore = cpu();
    const started = performance.now();
    await pool(CHARGES, CONCURRENCY, (i) => charge(i, "load"));
    const seconds = (performance.now() - started) / 1000;
    while ((await billed()) < warmBilled + CHARGES) await sleep(50);
    const cpuMs = (cpu() - cpuBefore) * 1000;
    await db.end();
    return {
      processes: pids.length,
      chargesPerSecond: round(CHARGES / seconds, 1),
      cpuMsPerCharge: round(cpuMs / CHARGES, 2),
      byService: Object.fromEntries(
        ["gateway", "payment-verifier", "inference-worker", "settlement"].map((name) => [name, system.replicas[name].length]),
      ),
    };
  } catch (err) {
    throw new Error(`${err.message}\n${lines.slice(-30).join("\n")}`);
  } finally {
    if (system) await system.stop().catch((err) => log(`system stop: ${err.message}`));
    await remove();
  }
}

try {
  const load = loadavg().map((x) => round(x, 2));
  log(`${CHARGES} paid charges at c=${CONCURRENCY}, one replica of every service, then two; load ${load.join(" ")}`);
  const one = await measure(1);
  const two = await measure(2);
  process.stdout.write(
    `\n${table([
      ["system", "processes", "charges/s", "server CPU ms / paid charge"],
      ["1 replica of every service", one.processes, one.chargesPerSecond, one.cpuMsPerCharge],
      ["2 replicas of every service", two.processes, two.chargesPerSecond, two.cpuMsPerCharge],
    ])}\n2 vs 1: ${round(two.chargesPerSecond / one.chargesPerSecond, 2)}× the throughput, ${round(
      two.cpuMsPerCharge / one.cpuMsPerCharge,
      2,
    )}× the CPU per charge (no target: 2 cores cannot show scaling)\n`,
  );
  mkdirSync(join(ROOT, "bench/results"), { recursive: true });
  writeFileSync(
    join(ROOT, "bench/results/replicas.json"),
    `${JSON.stringify({ at: new Date().toISOString(), charges: CHARGES, concurrency: CONCURRENCY, loadAtStart: load, loadAtEnd: loadavg(), one, two, verdict: {} }, null, 2)}\n`,
  );
} catch (err) {
  process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
}
