import { Inject, Injectable } from "@nestjs/common";
import { JobHandler, type JobPayload } from "@worldrouter/runtime";
import { RunInference } from "./run-inference.use-case.js";

/** Queue edge: hands each `inference` job to the use-case. Failures are reported to the client and in usage, not thrown. */
@Injectable()
export class InferenceJobs {
  constructor(@Inject(RunInference) private readonly runInference: RunInference) {}

  @JobHandler("inference")
  async runInferenceJob(job: JobPayload<"inference">) {
    await this.runInference.run(job);
  }
}
