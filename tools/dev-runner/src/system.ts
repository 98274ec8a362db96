import { existsSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { dirname } from "node:path";
import { loadConfig, readWorldFile, shutdownTimeoutMs, type Config, type World } from "@worldrouter/config";
import { deployWorld, startAnvil, writeWorldFile, type RunningAnvil } from "@worldrouter/devchain";
import { startFakeUpstream, type FakeControls } from "@worldrouter/fake-upstream";
import { ensureDatabase, migrate } from "../../../prisma/migrate.mjs";
import { SERVICES, spawnService, stopService, waitUntilReady, type RunningService, type ServiceName } from "./services.js";

/**
 * Brings up the whole system on one machine: migrates Postgres, starts the local world where nothing real
 * is configured (a Tempo-mode anvil with the USDC.e stand-in unless CHAIN_RPC_URL is set; the fake
 * OpenAI/Anthropic upstream unless both provider keys are set), then the four services (N processes each with
 * REPLICAS or `replicas`, all on the same Redis, Postgres and chain), and waits until every one reports ready. Used by
 * `npm start` and by the end-to-end tests.
 */
export interface SystemOptions {
  env: NodeJS.ProcessEnv;
  worldFile: string;
  /** Pick free ports for the gateway and health endpoints instead of the configured ones (tests). */
  freePorts?: boolean;
  /** Lines of `system` and of each process, by its label (`gateway`, or `gateway#2` with several replicas). */
  onLine?: (source: string, line: string, stream: "stdout" | "stderr") => void;
  /** Default behaviour of the fake upstream, e.g. `{ fault: "500" }` to make every provider call fail. */
  fakeUpstream?: Partial<FakeControls>;
  /** Processes per service (a number for all, or per service); default REPLICAS and its per-service overrides. */
  replicas?: number | Partial<Record<ServiceName, number>>;
  /**
   * Keep the local chain across runs in this file (anvil `--state`): the next start reloads it with the world
   * (contracts, balances, past payments) of `worldFile`, so the ledger and the chain stay one history. `npm start`
   * sets it; tests start fresh chains. `npm run reset` wipes it together with the dev database.
   */
  chainStateFile?: string;
  /**
   * How long every process may take to answer `/readyz` (default 60 s). Tests that start two processes of every
   * service next to other test files on a 2-core box give it longer: a slow start is not the failure they test.
   */
  readyTimeoutMs?: number;
}

export interface RunningSystem {
  /** The first gateway's URL. */
  gatewayUrl: string;
  /** Every gateway replica's URL (PORT, PORT+1, … unless free ports were picked). */
  gatewayUrls: string[];
  world: World | undefined;
  env: NodeJS.ProcessEnv;
  /** Each settlement replica's ops listener (ledger API, `/ops/dashboard`), in replica order. */
  opsUrls: string[];
  /** Every process, in start order. */
  services: RunningService[];
  /** The processes of each service (e.g. to kill -9 one replica). */
  replicas: Record<ServiceName, RunningService[]>;
  stop(): Promise<void>;
}

const HEALTH_PORT_ENV = {
  "payment-verifier": "PAYMENT_VERIFIER_HEALTH_PORT",
  settlement: "SETTLEMENT_HEALTH_PORT",
  "inference-worker": "INFERENCE_WORKER_HEALTH_PORT",
} as const;
// Replica i of a non-gateway service listens on its health port + i × this (bumped past any port already taken).
const REPLICA_PORT_STRIDE = 100;

export async function startSystem(options: SystemOptions): Promise<RunningSystem> {
  const log = options.onLine ?? (() => {});
  const env: NodeJS.ProcessEnv = { ...options.env, WORLD_FILE: options.worldFile };
  if (options.freePorts) {
    env.PORT = String(await freePort());
    env.PAYMENT_VERIFIER_HEALTH_PORT = String(await freePort());
    env.INFERENCE_WORKER_HEALTH_PORT = String(await freePort());
    env.SETTLEMENT_HEALTH_PORT = String(await freePort());
    env.METRICS_PORT = String(await freePort());
    env.OPS_PORT = String(await freePort());
  }
  // Every bad variable is reported before anything starts (chain values come from the world written below).
  loadConfig({ ...env, WORLD_FILE: "/nonexistent", PAYEE_ADDRESS: env.PAYEE_ADDRESS ?? "0x0000000000000000000000000000000000000001" });
  const stops: (() => Promise<void>)[] = [];
  const services: RunningService[] = [];
  // SIGKILL only after a service's own drain-and-close limit (its process exits by then anyway).
  let killAfterMs: (name: ServiceName) => number = () => 20_000;
  // In reverse start order, each service's replicas together: gateways stop taking requests first.
  const stop = async () => {
    for (const name of [...SERVICES].reverse())
      await Promise.all(services.filter((s) => s.name === name).map((s) => stopService(s, killAfterMs(name))));
    for (const fn of stops.reverse()) await fn().catch(() => {});
  };
  try {
    const databaseUrl = env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/worldrouter";
    await ensureDatabase(databaseUrl);
    await migrate(databaseUrl, (line: string) => log("system", line, "stdout"));

    let world: World | undefined;
    if (!env.CHAIN_RPC_URL) {
      const anvil: RunningAnvil = await startAnvil({ stateFile: options.chainStateFile });
      stops.push(() => anvil.stop());
      const kept = await keptWorld(options, anvil.rpcUrl);
      world = kept ?? (await deployWorld(anvil.rpcUrl));
      log(
        "system",
        `local Tempo chain ${anvil.rpcUrl} (chain ${world.chainId}, ${kept ? `kept in ${options.chainStateFile}` : "fresh"}), USDC.e ${world.token.address}, ${world.wallets.length} funded wallets`,
        "stdout",
      );
    }
    if (!(env.OPENAI_API_KEY && env.ANTHROPIC_API_KEY)) {
      const upstream = await startFakeUpstream({ port: 0, defaults: options.fakeUpstream });
      stops.push(() => upstream.close());
      if (world) world = { ...world, upstreamUrl: upstream.url };
      else {
        if (!env.OPENAI_API_KEY) Object.assign(env, { OPENAI_BASE_URL: `${upstream.url}/v1`, OPENAI_API_KEY: "local-fake-upstream" });
        if (!env.ANTHROPIC_API_KEY) Object.assign(env, { ANTHROPIC_BASE_URL: upstream.url, ANTHROPIC_API_KEY: "local-fake-upstream" });
      }
      log("system", `fake OpenAI/Anthropic upstream ${upstream.url}`, "stdout");
    }
    if (world) {
      mkdirSync(dirname(options.worldFile), { recursive: true });
      writeWorldFile(options.worldFile, world);
    }
    const config = loadConfig(env); // fail here, once, with every bad variable named
    killAfterMs = (name) => shutdownTimeoutMs(config, name) + 5_000;
    const counts = replicaCounts(config, options.replicas);
    const host = config.gateway.host;
    const internalHost = config.health.host;
    const ports = await replicaPorts(config, counts, Boolean(options.freePorts));
    const opsPorts = await settlementOpsPorts(config, counts.settlement, Boolean(options.freePorts));
    // One realm for every gateway replica, as behind a load balancer: the first gateway's URL.
    env.PUBLIC_URL ??= `http://${host}:${ports.gateway[0]}`;
    for (const name of SERVICES) {
      ports[name].forEach((port, index) => {
        const label = counts[name] > 1 ? `${name}#${index + 1}` : name;
        if (name === "gateway") {
          const metricsPort = ports.gatewayMetrics[index]!;
          const replica = { index, label, url: `http://${host}:${port}`, internalUrl: `http://${internalHost}:${metricsPort}` };
          const replicaEnv = { ...env, PORT: String(port), METRICS_PORT: String(metricsPort) };
          services.push(spawnService(name, replica, replicaEnv, (source, line, stream) => log(source, line, stream)));
        } else {
          const replica = { index, label, url: `http://${internalHost}:${port}` };
          const replicaEnv: NodeJS.ProcessEnv = { ...env, [HEALTH_PORT_ENV[name]]: String(port) };
          if (name === "settlement") replicaEnv.OPS_PORT = String(opsPorts[index]);
          services.push(spawnService(name, replica, replicaEnv, (source, line, stream) => log(source, line, stream)));
        }
      });
    }
    await Promise.all(services.map((service) => waitUntilReady(`${service.internalUrl}/readyz`, service, options.readyTimeoutMs)));
    const replicas = Object.fromEntries(SERVICES.map((name) => [name, services.filter((s) => s.name === name)])) as Record<
      ServiceName,
      RunningService[]
    >;
    const gatewayUrls = replicas.gateway.map((s) => s.url);
    const opsUrls = opsPorts.map((port) => `http://${config.ops.host}:${port}`);
    return { gatewayUrl: gatewayUrls[0]!, gatewayUrls, opsUrls, world, env, services, replicas, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The world of a chain reloaded from its state file (its token still deployed there), with the new node's URL. */
async function keptWorld(options: SystemOptions, rpcUrl: string): Promise<World | undefined> {
  if (!options.chainStateFile || !existsSync(options.chainStateFile) || !existsSync(options.worldFile)) return undefined;
  const world = readWorldFile(options.worldFile);
  const response = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_getCode", params: [world.token.address, "latest"] }),
  });
  const { result } = (await response.json()) as { result?: string };
  return result && result !== "0x" ? { ...world, rpcUrl } : undefined;
}

function replicaCounts(config: Config, requested: SystemOptions["replicas"]): Record<ServiceName, number> {
  const configured: Record<ServiceName, number> = {
    gateway: config.replicas.gateway,
    "payment-verifier": config.replicas.paymentVerifier,
    "inference-worker": config.replicas.inferenceWorker,
    settlement: config.replicas.settlement,
  };
  if (requested === undefined) return configured;
  if (typeof requested === "number") return Object.fromEntries(SERVICES.map((name) => [name, requested])) as Record<ServiceName, number>;
  return { ...configured, ...requested };
}

type PortSet = ServiceName | "gatewayMetrics";

/**
 * Ports of every replica: gateways on PORT, PORT+1, …; their internal listeners and the other services on their
 * METRICS_PORT / health port + i × 100, moved up past any port already given out (with two gateways, 8081 is the
 * second gateway's, so the first verifier moves to 8082). Free ports from the OS instead when asked (tests).
 */
async function replicaPorts(config: Config, counts: Record<ServiceName, number>, free: boolean): Promise<Record<PortSet, number[]>> {
  const base: Record<PortSet, number> = {
    gateway: config.gateway.port,
    gatewayMetrics: config.health.gatewayPort,
    "payment-verifier": config.health.paymentVerifierPort,
    "inference-worker": config.health.inferenceWorkerPort,
    settlement: config.health.settlementPort,
  };
  const count = (name: PortSet) => counts[name === "gatewayMetrics" ? "gateway" : name];
  const taken = new Set<number>();
  const ports = {} as Record<PortSet, number[]>;
  for (const name of ["gateway", "gatewayMetrics", ...SERVICES.filter((s) => s !== "gateway")] as PortSet[]) {
    ports[name] = [];
    for (let i = 0; i < count(name); i++) {
      let port: number;
      if (free) port = i === 0 ? base[name] : await freePort();
      else if (name === "gateway") port = base.gateway + i;
      else for (port = base[name] + i * REPLICA_PORT_STRIDE; taken.has(port); port++);
      taken.add(port);
      ports[name].push(port);
    }
  }
  return ports;
}

/** Ops listener of each settlement replica: OPS_PORT + i × 100 (free ports in tests). */
async function settlementOpsPorts(config: Config, count: number, free: boolean): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(free && i > 0 ? await freePort() : config.ops.port + i * REPLICA_PORT_STRIDE);
  return ports;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
