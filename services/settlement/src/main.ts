import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import { FastifyAdapter, type NestFastifyApplication } from "@nestjs/platform-fastify";
import { loadConfigOrExit } from "@worldrouter/config";
import type { Logger } from "@worldrouter/observability";
import { infrastructureChecks, LOGGER, runService, useServiceLogger } from "@worldrouter/runtime";
import { SettlementModule } from "./settlement.module.js";

const config = loadConfigOrExit("settlement");
// The ops listener (ledger API, dashboard) is this app's HTTP server: private address, bearer token, never the gateway's port.
const app = await NestFactory.create<NestFastifyApplication>(
  SettlementModule.forRoot(config),
  new FastifyAdapter({ logger: false, forceCloseConnections: "idle" }),
  { bufferLogs: true },
);
useServiceLogger(app);
await app.listen(config.ops.port, config.ops.host);
app.get<Logger>(LOGGER).info({ opsUrl: `http://${config.ops.host}:${config.ops.port}/ops/dashboard` }, "ops listener ready");
const infra = infrastructureChecks(config);
await runService({
  service: "settlement",
  app,
  config,
  healthPort: config.health.settlementPort,
  checks: infra.checks,
  cleanup: infra.close,
});
