import { Inject, Injectable } from "@nestjs/common";
import { JobHandler } from "@worldrouter/runtime";
import { ResolveChargeOutcomesUseCase } from "./resolve-charge-outcomes.use-case.js";

/** Queue edge: the charge-outcomes scheduler's ticks. */
@Injectable()
export class ChargeOutcomesJobs {
  constructor(@Inject(ResolveChargeOutcomesUseCase) private readonly outcomes: ResolveChargeOutcomesUseCase) {}

  @JobHandler("charge-outcomes")
  async onTick() {
    await this.outcomes.resolveDue();
  }
}
