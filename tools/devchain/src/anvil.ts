import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

/**
 * Starts a local anvil node in Tempo mode (T4 hardfork, chain 4217) from the `@foundry-rs/anvil` npm package.
 * See /work/shared/notes/local-tempo-chain.md for why each flag is needed.
 */

export interface AnvilOptions {
  /** Defaults to 0: the OS picks a free port, so parallel test files never collide. */
  port?: number;
  /**
   * Keep the chain across restarts: anvil loads this file at start (when it exists) and writes its whole state back
   * when stopped (`--state`). Without it every start is a fresh chain.
   */
  stateFile?: string;
}

export interface RunningAnvil {
  rpcUrl: string;
  stop(): Promise<void>;
}

const TEMPO_CHAIN_ID = 4217;
const START_TIMEOUT_MS = 15_000;

/** Same lookup as `@foundry-rs/anvil`'s bin.mjs: the binary ships in a per-platform optional dependency. */
export function anvilBinaryPath(): string {
  const arch = { x64: "amd64", arm64: "arm64" }[process.arch as string];
  if (!arch || !["linux", "darwin", "win32"].includes(process.platform)) {
    throw new Error(`@foundry-rs/anvil has no binary for ${process.platform}/${process.arch}`);
  }
  const binaryName = process.platform === "win32" ? "anvil.exe" : "anvil";
  const wrapperRequire = createRequire(createRequire(import.meta.url).resolve("@foundry-rs/anvil/package.json"));
  const path = wrapperRequire.resolve(join(`@foundry-rs/anvil-${process.platform}-${arch}`, "bin", binaryName));
  if (!existsSync(path)) throw new Error(`anvil binary missing at ${path}; reinstall @foundry-rs/anvil`);
  return path;
}

export async function startAnvil(options: AnvilOptions = {}): Promise<RunningAnvil> {
  const args = [
    "--network",
    "tempo",
    // T4: the default T0 silently drops the expiring-nonce transactions mppx sends.
    "--hardfork",
    "t4",
    "--chain-id",
    String(TEMPO_CHAIN_ID),
    // Keep block timestamps fresh: expiring-nonce txs must be valid within 30 s of the latest block.
    "--block-time",
    "1",
    "--mixed-mining",
    "--host",
    "127.0.0.1",
    "--port",
    String(options.port ?? 0),
    // Also written every few seconds, so a killed (not stopped) node loses only its last seconds.
    ...(options.stateFile ? ["--state", options.stateFile, "--state-interval", "5"] : []),
  ];
  const child = spawn(anvilBinaryPath(), args, { stdio: ["ignore", "pipe", "pipe"] });
  const killOnParentExit = () => child.kill("SIGKILL");
  process.on("exit", killOnParentExit);

  const recentOutput: string[] = [];
  const listening = new Promise<string>((resolve, reject) => {
    const onOutput = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line.trim() === "") continue;
        recentOutput.push(line);
        if (recentOutput.length > 40) recentOutput.shift();
        const match = /Listening on ([\d.]+:\d+)/.exec(line);
        if (match) resolve(`http://${match[1]}`);
      }
    };
    // Keep draining output for the node's lifetime: a full pipe would block anvil.
    child.stdout.on("data", onOutput);
    child.stderr.on("data", onOutput);
    child.once("error", reject);
    child.once("exit", (code, signal) => reject(new Error(`anvil exited early (code ${code}, signal ${signal})`)));
  });

  // Writing the state file back takes a moment on a long-lived chain: give it time before a SIGKILL would lose it.
  const stop = () => stopChild(child, killOnParentExit, options.stateFile ? 30_000 : 3_000);
  try {
    const rpcUrl = await withTimeout(listening, START_TIMEOUT_MS, "anvil did not start listening");
    await waitForRpc(rpcUrl, START_TIMEOUT_MS);
    return { rpcUrl, stop };
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n--- anvil output ---\n${recentOutput.join("\n")}`, { cause: err });
  }
}

async function stopChild(child: ChildProcess, killOnParentExit: () => void, graceMs: number): Promise<void> {
  process.off("exit", killOnParentExit);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const forceKill = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(forceKill);
}

async function waitForRpc(rpcUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(rpcUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
      });
      const body = (await response.json()) as { result?: string };
      if (body.result && Number(body.result) === TEMPO_CHAIN_ID) return;
    } catch {
      // not accepting connections yet
    }
    if (Date.now() > deadline) throw new Error(`anvil RPC at ${rpcUrl} did not answer within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
