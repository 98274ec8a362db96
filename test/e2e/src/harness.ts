import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { World } from "@worldrouter/config";
import { freePort, startSystem, type RunningSystem, type SystemOptions } from "@worldrouter/dev-runner";
import { reconcileCharges, type ChargeReconciliation } from "@worldrouter/reconciliation";
import type { FakeControls } from "@worldrouter/fake-upstream";
import { createTempoClients } from "@worldrouter/chain";
import { Mppx, tempo } from "mppx/client";
import pg from "pg";
import { afterAll, beforeAll } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import { ensureDatabase, migrate } from "../../../prisma/migrate.mjs";

/**
 * One whole system per test file: local chain + fake upstream + the four built services on free ports, on a database
 * of its own (each file's chain starts at block 0, so ledgers of several files in one database could not be reconciled
 * with their chains) and the run's Redis namespace (from the global setup). `DATABASE_URL` of the file's process points
 * at that database from then on. `replicas` runs several
 * processes per service: `gatewayUrls` lists every gateway, `replicas[service]` every process (to kill one).
 */
export async function startTestSystem(
  env: NodeJS.ProcessEnv = {},
  fakeUpstream?: Partial<FakeControls>,
  options: { replicas?: SystemOptions["replicas"] } = {},
): Promise<RunningSystem & { world: World; logs: string[] }> {
  const logs: string[] = [];
  await useOwnDatabase();
  const worldFile = join(mkdtempSync(join(tmpdir(), "wr-e2e-")), "world.json");
  const system = await startSystem({
    env: { ...process.env, LOG_LEVEL: "info", NODE_ENV: "test", ...RATE_LIMITS_OFF, ...env },
    worldFile,
    freePorts: true,
    fakeUpstream,
    replicas: options.replicas,
    readyTimeoutMs: 150_000,
    onLine: (service, line) => logs.push(`${service} | ${line}`),
  }).catch((err) => {
    throw new Error(`${(err as Error).message}\n${logs.slice(-40).join("\n")}`);
  });
  return { ...system, world: system.world!, logs };
}

/** Rate limits out of the way of tests that are not about them (every test client is 127.0.0.1). */
export const RATE_LIMITS_OFF = { RATE_LIMIT_UNPAID: "1000000000", RATE_LIMIT_PAID: "1000000000", RATE_LIMIT_SESSION: "1000000000" };

export type TestSystem = Awaited<ReturnType<typeof startTestSystem>>;

/** Points this test file's DATABASE_URL at a fresh, migrated database of its own (dropped by `dropOwnDatabase`). */
async function useOwnDatabase(): Promise<void> {
  if (process.env.WR_E2E_OWN_DATABASE) return;
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `${url.pathname}_${randomBytes(3).toString("hex")}`;
  await ensureDatabase(url.toString());
  await migrate(url.toString(), () => {});
  process.env.WR_E2E_OWN_DATABASE = url.toString();
  process.env.DATABASE_URL = url.toString();
}

export async function dropOwnDatabase(): Promise<void> {
  const own = process.env.WR_E2E_OWN_DATABASE;
  if (!own) return;
  const admin = new URL(own);
  const name = admin.pathname.slice(1);
  admin.pathname = "/postgres";
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => client.end());
  delete process.env.WR_E2E_OWN_DATABASE;
}

/**
 * Starts a system for the current test file (beforeAll) and stops it after (afterAll), with a Postgres client
 * on the run's database. Read `.system` and `.db` inside tests.
 */
export function useTestSystem(
  env: NodeJS.ProcessEnv = {},
  fakeUpstream?: Partial<FakeControls>,
  options: { replicas?: SystemOptions["replicas"] } = {},
) {
  const handle = {} as { system: TestSystem; db: pg.Client };
  beforeAll(async () => {
    handle.system = await startTestSystem(env, fakeUpstream, options);
    handle.db = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await handle.db.connect();
  }, 240_000);
  afterAll(async () => {
    await handle.db?.end();
    await handle.system?.stop();
    await dropOwnDatabase();
  });
  return handle;
}

/** An unmodified mppx client paying from one of the world's funded wallets. */
export function mppxClient(world: World, walletIndex: number, mode: "pull" | "push" = "pull") {
  const wallet = world.wallets[walletIndex]!;
  const account = privateKeyToAccount(wallet.privateKey);
  const clients = createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address });
  const mppx = Mppx.create({
    polyfill: false,
    methods: [tempo.charge({ account, getClient: () => clients.publicClient as never, expectedChainId: world.chainId, mode })],
  });
  return { mppx, account, clients };
}

export async function tokenBalance(world: World, address: `0x${string}`): Promise<bigint> {
  const clients = createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address });
  return clients.publicClient.readContract({
    address: world.token.address,
    abi: [
      {
        type: "function",
        name: "balanceOf",
        stateMutability: "view",
        inputs: [{ name: "a", type: "address" }],
        outputs: [{ type: "uint256" }],
      },
    ] as const,
    functionName: "balanceOf",
    args: [address],
  });
}

/** The chain's current block: take it before a scenario, pass it to `reconcile` after. */
export function currentBlock(world: World): Promise<bigint> {
  return createTempoClients({ rpcUrl: world.rpcUrl, chainId: world.chainId, feeToken: world.token.address }).publicClient.getBlockNumber();
}

/** The ledger against the chain (`reconcileCharges`) for the system's payee and token, from `fromBlock` to now. */
export async function reconcile(system: TestSystem, db: pg.Client, fromBlock: bigint): Promise<ChargeReconciliation> {
  const { publicClient } = createTempoClients({
    rpcUrl: system.world.rpcUrl,
    chainId: system.world.chainId,
    feeToken: system.world.token.address,
  });
  return reconcileCharges({
    db,
    publicClient,
    token: system.world.token.address,
    payee: system.world.payee.address,
    fromBlock,
    toBlock: await publicClient.getBlockNumber(),
  });
}

/**
 * A Redis of this test file's own, with AOF on (as production should run it), to kill and restart: the machine's
 * shared Redis is never stopped (shared/notes/fault-tests.md). `kill()` is SIGKILL; `start()` brings it back on the
 * same port and directory, so it replays its append-only file.
 */
export async function startPrivateRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "wr-redis-"));
  let child: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;
  const start = async () => {
    const started = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", dir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = started;
    await new Promise<void>((resolve, reject) => {
      let out = "";
      started.stdout!.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        if (/Ready to accept connections/.test(out)) resolve();
      });
      started.once("exit", (code) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${out}`)));
    });
  };
  const kill = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    await exited;
  };
  await start();
  return { url, port, start, kill, stop: kill };
}
