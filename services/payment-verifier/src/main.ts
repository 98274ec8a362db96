import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import type { AsyncMicroserviceOptions } from "@nestjs/microservices";
import { loadConfigOrExit } from "@worldrouter/config";
import { RPC_SERVICE } from "@worldrouter/contracts";
import { createRpcServer, infrastructureChecks, METRICS, runService, useServiceLogger } from "@worldrouter/runtime";
import type { Registry } from "prom-client";
import { PaymentVerifierModule } from "./payment-verifier.module.js";

const config = loadConfigOrExit("payment-verifier");
const app = await NestFactory.createMicroservice<AsyncMicroserviceOptions>(PaymentVerifierModule.forRoot(config), {
  useFactory: (metrics: Registry) => ({ strategy: createRpcServer(config, RPC_SERVICE, metrics) }),
  inject: [METRICS],
  bufferLogs: true,
});
useServiceLogger(app);
await app.listen();
const infra = infrastructureChecks(config);
await runService({
  service: "payment-verifier",
  app,
  config,
  healthPort: config.health.paymentVerifierPort,
  checks: infra.checks,
  cleanup: infra.close,
});
