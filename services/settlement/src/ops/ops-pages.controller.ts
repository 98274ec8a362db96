import { readFile } from "node:fs/promises";
import { Controller, Get, Header, Param, Res, UseFilters } from "@nestjs/common";
import type { FastifyReply } from "fastify";
import { opsOpenApi } from "./ops-openapi.js";
import { NotFoundError, OpsProblemFilter } from "./ops-problem.js";

// Copied next to the compiled controller by `npm run build` (scripts/copy-dashboard.mjs), uPlot included.
const DASHBOARD_DIR = new URL("./dashboard/", import.meta.url);
const ASSETS: Record<string, string> = {
  "dashboard.js": "text/javascript; charset=utf-8",
  "dashboard.css": "text/css; charset=utf-8",
  "uPlot.iife.min.js": "text/javascript; charset=utf-8",
  "uPlot.min.css": "text/css; charset=utf-8",
};

/**
 * What the ops listener serves without the token: the OpenAPI document and the dashboard's static files, which hold
 * no ledger data (the page asks the API for it with the token).
 */
@Controller("ops")
@UseFilters(OpsProblemFilter)
export class OpsPagesController {
  private readonly openApi = JSON.stringify(opsOpenApi());

  @Get("openapi.json")
  @Header("content-type", "application/json")
  openapi() {
    return this.openApi;
  }

  @Get("dashboard")
  async dashboard(@Res() reply: FastifyReply) {
    return this.send(reply, "index.html", "text/html; charset=utf-8");
  }

  @Get("dashboard/assets/:file")
  async asset(@Param("file") file: string, @Res() reply: FastifyReply) {
    const type = ASSETS[file];
    if (!type) throw new NotFoundError(`no dashboard asset ${file}`);
    return this.send(reply, file, type);
  }

  private async send(reply: FastifyReply, file: string, type: string) {
    const body = await readFile(new URL(file, DASHBOARD_DIR));
    // No framing by other sites; scripts only from this origin.
    return reply
      .header("content-type", type)
      .header("cache-control", "no-cache")
      .header("x-frame-options", "DENY")
      .header("content-security-policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
      .send(body);
  }
}
