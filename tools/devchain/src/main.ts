import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startAnvil } from "./anvil.js";
import { deployWorld, writeWorldFile } from "./world.js";

// devchain: local Tempo chain + world for development. Usage: node dist/main.js [--world-file path] [--port n]
const { values } = parseArgs({ options: { "world-file": { type: "string" }, port: { type: "string" } } });
const worldFile = values["world-file"] ?? fileURLToPath(new URL("../../../.local/world.json", import.meta.url));

const anvil = await startAnvil({ port: values.port === undefined ? 0 : Number(values.port) });
try {
  writeWorldFile(worldFile, await deployWorld(anvil.rpcUrl));
} catch (err) {
  await anvil.stop();
  throw err;
}
console.log(`devchain ready ${anvil.rpcUrl}`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void anvil.stop().then(() => process.exit(0)));
}
