import type { INestApplicationContext } from "@nestjs/common";
import { shutdownTimeoutMs, type Config, type ServiceName } from "@worldrouter/config";
import { PinoNestLogger, startHealthServer, type Logger, type ReadinessCheck } from "@worldrouter/observability";
import type { Registry } from "prom-client";
import { LOGGER, METRICS } from "./tokens.js";

/**
 * The tail of every service's main.ts: health/metrics port, readiness log line, and graceful shutdown on
 * SIGINT/SIGTERM (stop taking work, drain in-flight work via Nest shutdown hooks, close connections), bounded by
 * the service's own `shutdownTimeoutMs(config, service)` (`@worldrouter/config`): past it the process exits.
 */
export async function runService(options: {
  service: ServiceName;
  app: INestApplicationContext;
  config: Config;
  /** Health/metrics port of a service without HTTP of its own (the gateway has its internal listener). */
  healthPort?: number;
  checks?: Record<string, ReadinessCheck>;
  /** Runs after the app closed: connections the readiness checks or main.ts opened. */
  cleanup?: () => Promise<void>;
}): Promise<void> {
  const { app, config, service } = options;
  const logger = app.get<Logger>(LOGGER);
  const health =
    options.healthPort === undefined
      ? undefined
      : await startHealthServer({
          port: options.healthPort,
          host: config.health.host,
          registry: app.get<Registry>(METRICS),
          checks: options.checks ?? {},
        });
  if (health) logger.info({ healthUrl: `http://${config.health.host}:${options.healthPort}` }, `${service} ready`);
  const limitMs = shutdownTimeoutMs(config, service);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, limitMs }, `${service} shutting down: draining in-flight work`);
    const timer = setTimeout(() => {
      logger.error(`${service} did not drain within ${limitMs} ms; exiting`);
      logger.flush?.();
      process.exit(1);
    }, limitMs).unref();
    await app.close();
    health?.close();
    await options.cleanup?.();
    clearTimeout(timer);
    logger.info(`${service} stopped`);
    logger.flush?.();
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
}

/** Call right after creating the app (created with `bufferLogs: true`) so Nest's own logs go to pino. */
export function useServiceLogger(app: INestApplicationContext): void {
  app.useLogger(new PinoNestLogger(app.get<Logger>(LOGGER)));
}
