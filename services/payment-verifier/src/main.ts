import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import { loadConfigOrExit } from "@worldrouter/config";
import { createRpcServer, infrastructureChecks, runService, useServiceLogger } from "@worldrouter/runtime";
import { PaymentVerifierModule } from "./payment-verifier.module.js";

const config = loadConfigOrExit("payment-verifier");
const app = await NestFactory.createMicroservice(PaymentVerifierModule.forRoot(config), {
  strategy: createRpcServer(config),
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
