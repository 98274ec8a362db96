import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { Controller, Get, Header, Inject, Param, Post, Query, Req, Res, UseFilters, UseGuards } from "@nestjs/common";
import { accounts } from "@worldrouter/db";
import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { LedgerReportsRepository, type Granularity } from "./ledger-reports.repository.js";
import { OpsAuthGuard } from "./ops-auth.guard.js";
import { InvalidQueryError, NotFoundError, OpsProblemFilter } from "./ops-problem.js";
import { LIST_NAMES, LISTS, parseListQuery, toCsv, decodeCursor, type ListName } from "./report-lists.js";
import { RetryRefundUseCase } from "./retry-refund.use-case.js";

const CSV_MAX_ROWS = 1_000_000;
// A chart wider than this many points is unreadable and a slow query: ask for a coarser granularity.
const MAX_BUCKETS = 5_000;
const BUCKET_MS: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

const SummaryQuery = z.strictObject({
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  granularity: z.enum(["minute", "hour", "day"]).default("hour"),
});

/** The ledger API (read-only, through `worldrouter_ops_reader`) and the ops actions. Bearer OPS_TOKEN on every route. */
@Controller("ops/api")
@UseGuards(OpsAuthGuard)
@UseFilters(OpsProblemFilter)
export class OpsApiController {
  constructor(
    @Inject(LedgerReportsRepository) private readonly reports: LedgerReportsRepository,
    @Inject(RetryRefundUseCase) private readonly retryRefund: RetryRefundUseCase,
  ) {}

  /** Default range: the last 24 hours. */
  @Get("summary")
  @Header("cache-control", "no-store")
  summary(@Query() query: unknown) {
    const parsed = SummaryQuery.safeParse(query ?? {});
    if (!parsed.success) throw new InvalidQueryError(z.prettifyError(parsed.error).replaceAll("\n", "; "));
    const to = parsed.data.to ? new Date(parsed.data.to) : new Date();
    const from = parsed.data.from ? new Date(parsed.data.from) : new Date(to.getTime() - 86_400_000);
    if (from >= to) throw new InvalidQueryError("from must be before to");
    const buckets = (to.getTime() - from.getTime()) / BUCKET_MS[parsed.data.granularity];
    if (buckets > MAX_BUCKETS) {
      throw new InvalidQueryError(
        `${Math.ceil(buckets)} ${parsed.data.granularity} buckets in this range: at most ${MAX_BUCKETS}; use a coarser granularity`,
      );
    }
    return this.reports.summary(from, to, parsed.data.granularity);
  }

  @Get("payers/:address")
  @Header("cache-control", "no-store")
  async payer(@Param("address") address: string) {
    if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new InvalidQueryError("address: expected a 0x-prefixed 20-byte address");
    const payer = address.toLowerCase();
    const found = await this.reports.payer(payer, accounts.payerPrepaid(payer));
    if (!found) throw new NotFoundError(`no requests or payments from ${payer}`);
    return found;
  }

  /** Any list; `format=csv` exports every row matching the filters (not one page) as CSV. */
  @Get(":list")
  async list(@Param("list") list: string, @Query() query: unknown, @Res() reply: FastifyReply) {
    if (!LIST_NAMES.includes(list as ListName)) throw new NotFoundError(`no list ${list} (lists: ${LIST_NAMES.join(", ")})`);
    const name = list as ListName;
    const parsed = parseListQuery(name, query);
    reply.header("cache-control", "no-store");
    if (parsed.format === "csv") {
      const columns = LISTS[name].columns;
      reply.header("content-type", "text/csv; charset=utf-8").header("content-disposition", `attachment; filename="${name}.csv"`);
      const reports = this.reports;
      // Streamed page by page: an export of millions of rows never sits in memory whole.
      const csv = async function* () {
        yield `${columns.join(",")}\r\n`;
        for await (const rows of reports.allRows(name, parsed, CSV_MAX_ROWS)) yield `${toCsv(columns, rows)}\r\n`;
      };
      return reply.send(Readable.from(csv()));
    }
    return reply.send(await this.reports.page(name, parsed, parsed.cursor ? decodeCursor(parsed.cursor) : undefined));
  }

  /** Ops action: retry a refund that gave up. `Idempotency-Key` makes a repeated call a replay (default: a new key). */
  @Post("refunds/:paymentId/retry")
  @Header("cache-control", "no-store")
  retry(@Param("paymentId") paymentId: string, @Req() request: FastifyRequest) {
    if (!z.uuid().safeParse(paymentId).success) throw new InvalidQueryError("paymentId: expected a charge payment id (uuid)");
    const key = request.headers["idempotency-key"];
    if (key !== undefined && (typeof key !== "string" || !/^[\w.:-]{8,200}$/.test(key))) {
      throw new InvalidQueryError("Idempotency-Key: 8 to 200 characters of letters, digits, _ . : -");
    }
    return this.retryRefund.retry({ paymentId, idempotencyKey: key ?? randomUUID(), actor: "ops-token" });
  }
}
