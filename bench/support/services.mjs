/**
 * dev-runner's service spawning with a custom entry point (for `--service-dist` A/B runs); stopping and
 * readiness are dev-runner's own.
 */
import { spawn } from "node:child_process";
export { stopService, waitUntilReady } from "@worldrouter/dev-runner";

/** Same as dev-runner's spawnService (`node --enable-source-maps <entry>`, line-wise output), for any entry. */
export function spawnServiceFrom(name, env, onLine, entry) {
  const child = spawn(process.execPath, ["--enable-source-maps", entry], { env, stdio: ["ignore", "pipe", "pipe"] });
  for (const stream of ["stdout", "stderr"]) {
    let buffered = "";
    child[stream].setEncoding("utf8").on("data", (data) => {
      buffered += data;
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        onLine(name, buffered.slice(0, newline), stream);
        buffered = buffered.slice(newline + 1);
      }
    });
  }
  const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  return { name, child, exited };
}
