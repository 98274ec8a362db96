import { Module, type DynamicModule } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { CoreModule, JobConsumersModule, QueuesModule } from "@worldrouter/runtime";
import { InferenceJobs } from "./inference.jobs.js";

/** Runs `inference` jobs against the providers, streams chunks back, reports `usage`. */
@Module({})
export class InferenceWorkerModule {
  static forRoot(config: Config): DynamicModule {
    return {
      module: InferenceWorkerModule,
      imports: [
        CoreModule.forRoot("inference-worker", config),
        QueuesModule.forRoot(config, ["usage"]),
        JobConsumersModule.forRoot({ consumes: ["inference"], concurrency: { inference: config.inference.concurrency } }),
      ],
      providers: [InferenceJobs],
    };
  }
}
