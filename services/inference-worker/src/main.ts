import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import { loadConfigOrExit } from "@worldrouter/config";
import { infrastructureChecks, runService, useServiceLogger } from "@worldrouter/runtime";
import { InferenceWorkerModule } from "./inference-worker.module.js";

const config = loadConfigOrExit("inference-worker");
const app = await NestFactory.createApplicationContext(InferenceWorkerModule.forRoot(config), { bufferLogs: true });
useServiceLogger(app);
await app.init();
const infra = infrastructureChecks(config);
await runService({
  service: "inference-worker",
  app,
  config,
  healthPort: config.health.inferenceWorkerPort,
  checks: infra.checks,
  cleanup: infra.close,
});
