import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";

export type ReadinessCheck = () => Promise<void>;

/**
 * The small HTTP port every worker service exposes: `/healthz` (process alive), `/readyz` (every
 * dependency check passes) and `/metrics` (Prometheus text format).
 */
export async function startHealthServer(options: {
  port: number;
  host?: string;
  registry: Registry;
  checks: Record<string, ReadinessCheck>;
}): Promise<Server> {
  const server = createServer(async (req, res) => {
    if (req.url === "/healthz") return void res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
    if (req.url === "/readyz") {
      const report = await runReadinessChecks(options.checks);
      return void res.writeHead(report.ready ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify(report));
    }
    if (req.url === "/metrics") {
      const body = await options.registry.metrics();
      return void res.writeHead(200, { "content-type": options.registry.contentType }).end(body);
    }
    res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "127.0.0.1", () => resolve());
  });
  return server;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, { ok: boolean; error?: string }>;
}

export async function runReadinessChecks(checks: Record<string, ReadinessCheck>, timeoutMs = 2000): Promise<ReadinessReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      try {
        await withTimeout(check(), timeoutMs, name);
        return [name, { ok: true }] as const;
      } catch (err) {
        return [name, { ok: false, error: (err as Error).message }] as const;
      }
    }),
  );
  return { ready: entries.every(([, r]) => r.ok), checks: Object.fromEntries(entries) };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]);
}
