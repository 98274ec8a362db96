import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { dirname } from "node:path";
import { loadConfig, type World } from "@worldrouter/config";
import { deployWorld, startAnvil, writeWorldFile, type RunningAnvil } from "@worldrouter/devchain";
import { startFakeUpstream, type FakeControls } from "@worldrouter/fake-upstream";
import { ensureDatabase, migrate } from "../../../prisma/migrate.mjs";
import { SERVICES, spawnService, stopService, waitUntilReady, type RunningService, type ServiceName } from "./services.js";

/**
 * Brings up the whole system on one machine: migrates Postgres, starts the local world where nothing real
 * is configured (a Tempo-mode anvil with the USDC.e stand-in unless CHAIN_RPC_URL is set; the fake
 * OpenAI/Anthropic upstream unless both provider keys are set), then the four services, and waits until
 * every one reports ready. Used by `npm start` and by the end-to-end tests.
 */
export interface SystemOptions {
  env: NodeJS.ProcessEnv;
  worldFile: string;
  /** Pick free ports for the gateway and health endpoints instead of the configured ones (tests). */
  freePorts?: boolean;
  onLine?: (service: ServiceName | "system", line: string, stream: "stdout" | "stderr") => void;
  /** Default behaviour of the fake upstream, e.g. `{ fault: "500" }` to make every provider call fail. */
  fakeUpstream?: Partial<FakeControls>;
}

export interface RunningSystem {
  gatewayUrl: string;
  world: World | undefined;
  env: NodeJS.ProcessEnv;
  services: RunningService[];
  stop(): Promise<void>;
}

export async function startSystem(options: SystemOptions): Promise<RunningSystem> {
  const log = options.onLine ?? (() => {});
  const env: NodeJS.ProcessEnv = { ...options.env, WORLD_FILE: options.worldFile };
  if (options.freePorts) {
    env.PORT = String(await freePort());
    env.PAYMENT_VERIFIER_HEALTH_PORT = String(await freePort());
    env.INFERENCE_WORKER_HEALTH_PORT = String(await freePort());
    env.SETTLEMENT_HEALTH_PORT = String(await freePort());
  }
  // Every bad variable is reported before anything starts (chain values come from the world written below).
  loadConfig({ ...env, WORLD_FILE: "/nonexistent", PAYEE_ADDRESS: env.PAYEE_ADDRESS ?? "0x0000000000000000000000000000000000000001" });
  const stops: (() => Promise<void>)[] = [];
  const services: RunningService[] = [];
  const stop = async () => {
    for (const service of [...services].reverse()) await stopService(service);
    for (const fn of stops.reverse()) await fn().catch(() => {});
  };
  try {
    const databaseUrl = env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/worldrouter";
    await ensureDatabase(databaseUrl);
    await migrate(databaseUrl, (line: string) => log("system", line, "stdout"));

    let world: World | undefined;
    if (!env.CHAIN_RPC_URL) {
      const anvil: RunningAnvil = await startAnvil();
      stops.push(() => anvil.stop());
      world = await deployWorld(anvil.rpcUrl);
      log(
        "system",
        `local Tempo chain ${anvil.rpcUrl} (chain ${world.chainId}), USDC.e ${world.token.address}, ${world.wallets.length} funded wallets`,
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
    const health: Record<ServiceName, string> = {
      "payment-verifier": `http://${config.gateway.host}:${config.health.paymentVerifierPort}/readyz`,
      settlement: `http://${config.gateway.host}:${config.health.settlementPort}/readyz`,
      "inference-worker": `http://${config.gateway.host}:${config.health.inferenceWorkerPort}/readyz`,
      gateway: `http://${config.gateway.host}:${config.gateway.port}/readyz`,
    };
    for (const name of SERVICES) services.push(spawnService(name, env, (service, line, stream) => log(service, line, stream)));
    await Promise.all(services.map((service) => waitUntilReady(health[service.name], service)));
    return { gatewayUrl: `http://${config.gateway.host}:${config.gateway.port}`, world, env, services, stop };
  } catch (err) {
    await stop();
    throw err;
  }
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
