import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import { FastifyAdapter, type NestFastifyApplication } from "@nestjs/platform-fastify";
import { loadConfigOrExit } from "@worldrouter/config";
import { LOGGER, useServiceLogger } from "@worldrouter/runtime";
import type { Logger } from "@worldrouter/observability";
import { GatewayModule } from "./gateway.module.js";
import { InternalListener } from "./health/internal-listener.js";
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
const internalUrl = await app.get(InternalListener).start();
app.get<Logger>(LOGGER).info({ url: config.gateway.publicUrl, internalUrl }, "gateway ready");
