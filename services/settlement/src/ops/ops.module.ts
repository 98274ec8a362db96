import { Module } from "@nestjs/common";
import { LedgerReportsRepository } from "./ledger-reports.repository.js";
import { OpsApiController } from "./ops-api.controller.js";
import { OpsAuthGuard } from "./ops-auth.guard.js";
import { OpsPagesController } from "./ops-pages.controller.js";
import { OpsReader } from "./ops-reader.js";
import { RetryRefundUseCase } from "./retry-refund.use-case.js";

/** settlement's ops listener: the ledger API (read-only role), ops actions, OpenAPI document and dashboard. */
@Module({
  controllers: [OpsApiController, OpsPagesController],
  providers: [OpsReader, LedgerReportsRepository, OpsAuthGuard, RetryRefundUseCase],
})
export class OpsModule {}
