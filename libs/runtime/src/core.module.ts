import { Global, Module, type DynamicModule } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { createLogger, createMetricsRegistry } from "@worldrouter/observability";
import { CONFIG, LOGGER, METRICS, SERVICE_NAME } from "./tokens.js";

/** Config, logger and metrics registry, created once per process and injectable everywhere. */
@Global()
@Module({})
export class CoreModule {
  static forRoot(service: string, config: Config): DynamicModule {
    const logger = createLogger(service, config.logLevel);
    return {
      module: CoreModule,
      providers: [
        { provide: SERVICE_NAME, useValue: service },
        { provide: CONFIG, useValue: config },
        { provide: LOGGER, useValue: logger },
        { provide: METRICS, useValue: createMetricsRegistry(service) },
      ],
      exports: [SERVICE_NAME, CONFIG, LOGGER, METRICS],
    };
  }
}
