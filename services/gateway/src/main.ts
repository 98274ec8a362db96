import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import { FastifyAdapter, type NestFastifyApplication } from "@nestjs/platform-fastify";
import { loadConfigOrExit } from "@worldrouter/config";
import { LOGGER, useServiceLogger } from "@worldrouter/runtime";
import type { Logger } from "@worldrouter/observability";
import { GatewayModule } from "./gateway.module.js";
import { configureHttp } from "./http/configure-http.js";

const config = loadConfigOrExit("gateway");
const app = await NestFactory.create<NestFastifyApplication>(
  GatewayModule.forRoot(config),
  new FastifyAdapter(configureHttp.adapterOptions(config)),
  { bufferLogs: true, bodyParser: false },
);
useServiceLogger(app);
configureHttp(app, config);
app.enableShutdownHooks(["SIGINT", "SIGTERM"]);
await app.listen(config.gateway.port, config.gateway.host);
app.get<Logger>(LOGGER).info({ url: config.gateway.publicUrl }, "gateway ready");
