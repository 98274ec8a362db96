import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import { FastifyAdapter, type NestFastifyApplication } from "@nestjs/platform-fastify";
import { loadConfigOrExit } from "@worldrouter/config";
import { LOGGER, runService, useServiceLogger } from "@worldrouter/runtime";
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
await app.listen(config.gateway.port, config.gateway.host);
const internalUrl = await app.get(InternalListener).start();
app.get<Logger>(LOGGER).info({ url: config.gateway.publicUrl, internalUrl }, "gateway ready");
// On SIGTERM: new requests get 503, in-flight ones (streams included) are relayed to their end for up to
// GATEWAY_DRAIN_MS; readiness and metrics are on the internal listener (no runService health port).
await runService({ service: "gateway", app, config });
