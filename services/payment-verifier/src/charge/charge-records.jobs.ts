import { Inject, Injectable } from "@nestjs/common";
import { JobHandler, type JobPayload } from "@worldrouter/runtime";
import { VerifyChargeUseCase } from "./verify-charge.use-case.js";

/** Queue edge: charges that settled on-chain while Postgres refused their record, retried until recorded. */
@Injectable()
export class ChargeRecordsJobs {
  constructor(@Inject(VerifyChargeUseCase) private readonly verifyCharge: VerifyChargeUseCase) {}

  @JobHandler("charge-records")
  async onChargeRecord(job: JobPayload<"charge-records">) {
    await this.verifyCharge.recordDeferred(job);
  }
}
