import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The four services, in start order (payment-verifier answers the gateway's readiness probe). */
export const SERVICES = ["payment-verifier", "settlement", "inference-worker", "gateway"] as const;
export type ServiceName = (typeof SERVICES)[number];

export const serviceEntry = (service: ServiceName) => fileURLToPath(new URL(`../../../services/${service}/dist/main.js`, import.meta.url));

export interface RunningService {
  name: ServiceName;
  /** 0-based replica index of this process among its service's processes. */
  replica: number;
  /** `gateway`, or `gateway#2` when a service runs several replicas (log prefixes). */
  label: string;
  /** The gateway's public HTTP base URL, or the internal listener's base URL of the other services. */
  url: string;
  /** The internal listener (`/readyz`, `/metrics`): the gateway's METRICS_PORT; `url` for the other services. */
  internalUrl: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

/** Spawns a built service (`services/<name>/dist/main.js`); each output line goes to `onLine` with its label. */
export function spawnService(
  name: ServiceName,
  replica: { index: number; label: string; url: string; internalUrl?: string },
  env: NodeJS.ProcessEnv,
  onLine: (label: string, line: string, stream: "stdout" | "stderr") => void,
): RunningService {
  const child = spawn(process.execPath, ["--enable-source-maps", serviceEntry(name)], { env, stdio: ["ignore", "pipe", "pipe"] });
  for (const stream of ["stdout", "stderr"] as const) {
    let buffered = "";
    child[stream]!.setEncoding("utf8").on("data", (data: string) => {
      buffered += data;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        onLine(replica.label, buffered.slice(0, newline), stream);
        buffered = buffered.slice(newline + 1);
      }
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    name,
    replica: replica.index,
    label: replica.label,
    url: replica.url,
    internalUrl: replica.internalUrl ?? replica.url,
    child,
    exited,
  };
}

/** Polls a readiness URL until it answers 200 or the service exits. */
export async function waitUntilReady(url: string, service: RunningService, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void service.exited.then((code) => (exitCode = code));
  let lastError = "";
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`${service.label} exited with code ${exitCode} before it was ready`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return;
      lastError = `${response.status} ${await response.text()}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${service.label} not ready after ${timeoutMs} ms (${url}): ${lastError}`);
}

/** SIGTERM (graceful drain), then SIGKILL if it does not exit in time. */
export async function stopService(service: RunningService, timeoutMs = 20_000): Promise<void> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return;
  service.child.kill("SIGTERM");
  const timer = setTimeout(() => service.child.kill("SIGKILL"), timeoutMs);
  await service.exited;
  clearTimeout(timer);
}
