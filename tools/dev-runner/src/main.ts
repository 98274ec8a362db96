/**
 * `npm start`: the whole system on local defaults, with colored per-service log prefixes. Ctrl-C stops
 * everything gracefully (services drain in-flight work first).
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DEV_OPS_TOKEN } from "@worldrouter/config";
import { startSystem } from "./system.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const COLORS: Record<string, string> = {
  system: "35",
  "payment-verifier": "36",
  settlement: "33",
  "inference-worker": "32",
  gateway: "34",
};
const width = Math.max(...Object.keys(COLORS).map((k) => k.length)) + 3; // room for a replica suffix: "gateway#2"
const useColor = process.stdout.isTTY && !process.env.NO_COLOR;

function print(source: string, line: string, stream: "stdout" | "stderr" = "stdout") {
  const label = source.padEnd(width);
  const color = COLORS[source.split("#")[0]!] ?? "37";
  const prefix = useColor ? `\x1b[${color}m${label} |\x1b[0m` : `${label} |`;
  (stream === "stderr" ? process.stderr : process.stdout).write(`${prefix} ${line}\n`);
}

const worldFile = resolve(repoRoot, process.env.WORLD_FILE ?? ".local/world.json");
// The local chain persists next to the world file, as the dev database does: `npm run reset` wipes both.
const chainStateFile = resolve(repoRoot, process.env.CHAIN_STATE_FILE ?? ".local/chain-state.json");
let system: Awaited<ReturnType<typeof startSystem>> | undefined;
let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  print("system", `${signal}: stopping services (draining in-flight work)…`);
  await system?.stop();
  print("system", "stopped");
  process.exit(0);
};
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

try {
  system = await startSystem({ env: process.env, worldFile, chainStateFile, onLine: print });
} catch (err) {
  print("system", `failed to start: ${(err as Error).message}`, "stderr");
  process.exit(1);
}
const wallet = system.world?.wallets[0];
for (const service of system.services) {
  print(
    "system",
    `${service.label.padEnd(width)} pid ${service.child.pid}  ${service.name === "gateway" ? `http ${service.url}  internal ${service.internalUrl}` : `internal ${service.url}`}`,
  );
}
print("system", `gateway ${system.gatewayUrls.join(", ")}  (models: ${system.gatewayUrl}/v1/models)`);
if (system.world) print("system", `local world: ${worldFile} (funded wallets with keys, token, escrow)`);
if (wallet) {
  print("system", `try it: node scripts/pay.mjs "Hello"   (pays with ${wallet.address} from the local world)`);
}
const opsToken = process.env.OPS_TOKEN ? "<OPS_TOKEN>" : DEV_OPS_TOKEN;
print("system", `ops dashboard ${system.opsUrls[0]}/ops/dashboard#token=${opsToken}   (ledger API: ${system.opsUrls[0]}/ops/openapi.json)`);
print("system", `WorldRouter ready at ${system.gatewayUrl}`);
for (const service of system.services) {
  void service.exited.then((code) => {
    if (!stopping) {
      print("system", `${service.label} exited unexpectedly (code ${code}); stopping everything`, "stderr");
      void shutdown("service-exit").then(() => process.exit(1));
    }
  });
}
