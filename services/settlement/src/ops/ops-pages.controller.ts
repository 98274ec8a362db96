import { Controller, Get, Header, UseFilters } from "@nestjs/common";
import { opsOpenApi } from "./ops-openapi.js";
import { OpsProblemFilter } from "./ops-problem.js";

/** What the ops listener serves without the token: documents and static pages that hold no ledger data. */
@Controller("ops")
@UseFilters(OpsProblemFilter)
export class OpsPagesController {
  private readonly openApi = JSON.stringify(opsOpenApi());

  @Get("openapi.json")
  @Header("content-type", "application/json")
  openapi() {
    return this.openApi;
  }
}
