import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import { loadConfigOrExit } from "@worldrouter/config";
import { infrastructureChecks, runService, useServiceLogger } from "@worldrouter/runtime";
import { SettlementModule } from "./settlement.module.js";

const config = loadConfigOrExit("settlement");
const app = await NestFactory.createApplicationContext(SettlementModule.forRoot(config), { bufferLogs: true });
useServiceLogger(app);
await app.init();
const infra = infrastructureChecks(config);
await runService({
  service: "settlement",
  app,
  config,
  healthPort: config.health.settlementPort,
  checks: infra.checks,
  cleanup: infra.close,
});
