import { startAnvil, deployWorld } from "./dist/index.js";
let t = Date.now();
const anvil = await startAnvil();
console.log("anvil", anvil.rpcUrl, Date.now() - t, "ms"); t = Date.now();
try {
  const world = await deployWorld(anvil.rpcUrl);
  console.log(JSON.stringify(world, null, 1).slice(0, 1500));
  console.log("deploy", Date.now() - t, "ms");
} catch (e) { console.error(e); }
await anvil.stop();
