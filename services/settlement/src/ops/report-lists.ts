import { z } from "zod";
import { InvalidQueryError } from "./ops-problem.js";

/**
 * The lists of the ops API: each is one `reporting.*` view, newest first, paged by keyset on (created_at, id) so a
 * page costs the same at row 10 and at row 10 million, with the filters it allows. One table, so the API, the CSV
 * export and the OpenAPI document cannot disagree.
 */
export const LISTS = {
  payments: {
    view: "reporting.payments",
    idType: "uuid",
    columns: ["id", "created_at", "payer", "amount", "status", "tx_hash", "block_number", "request_id", "served_request_id"],
    filters: { payer: "payer", status: "status", tx_hash: "tx_hash" },
  },
  requests: {
    view: "reporting.requests",
    idType: "text",
    columns: [
      "id",
      "created_at",
      "model",
      "provider",
      "payer",
      "status",
      "prompt_tokens",
      "completion_tokens",
      "estimated_cost",
      "charged_cost",
      "actual_cost",
      "billed",
      "payment_status",
      "charge_payment_id",
      "latency_ms",
    ],
    filters: { payer: "payer", status: "status", model: "model", provider: "provider" },
  },
  refunds: {
    view: "reporting.refunds",
    idType: "uuid",
    columns: ["id", "created_at", "payment_id", "payer", "amount", "status", "payment_status", "tx_hash", "error", "confirmed_at"],
    filters: { payer: "payer", status: "status" },
  },
  settlements: {
    view: "reporting.settlements",
    idType: "uuid",
    columns: [
      "id",
      "created_at",
      "kind",
      "status",
      "amount",
      "tx_hash",
      "block_number",
      "payer",
      "charge_payment_id",
      "channel_id",
      "error",
    ],
    filters: { payer: "payer", status: "status", kind: "kind" },
  },
  channels: {
    view: "reporting.channels",
    idType: "text",
    columns: [
      "id",
      "created_at",
      "payer",
      "status",
      "deposit",
      "accepted",
      "spent",
      "settled",
      "exposure",
      "open_tx_hash",
      "close_tx_hash",
    ],
    filters: { payer: "payer", status: "status" },
  },
  mismatches: {
    view: "reporting.reconciliation_mismatches",
    idType: "bigint",
    columns: ["id", "created_at", "stream", "kind", "tx_hash", "recorded", "on_chain", "from_block", "to_block", "resolved_at"],
    filters: { kind: "kind", tx_hash: "tx_hash" },
  },
  actions: {
    view: "reporting.ops_actions",
    idType: "uuid",
    columns: ["id", "created_at", "action", "target", "actor", "outcome", "detail"],
    filters: { action: "action", target: "target" },
  },
} as const;

export type ListName = keyof typeof LISTS;
export const LIST_NAMES = Object.keys(LISTS) as ListName[];
export type Row = Record<string, string | number | boolean | null>;

const MAX_LIMIT = 500;
const isoTime = z.iso.datetime({ offset: true });
const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, "expected a 0x-prefixed 20-byte address")
  .transform((a) => a.toLowerCase());

const baseQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(50),
  cursor: z.string().min(1).optional(),
  from: isoTime.optional(),
  to: isoTime.optional(),
  format: z.enum(["json", "csv"]).default("json"),
  payer: address.optional(),
  status: z
    .string()
    .regex(/^[a-z_]{1,32}$/)
    .optional(),
  model: z.string().min(1).max(200).optional(),
  provider: z.string().min(1).max(100).optional(),
  kind: z
    .string()
    .regex(/^[a-z_.]{1,64}$/)
    .optional(),
  tx_hash: z
    .string()
    .regex(/^0x[0-9a-fA-F]{64}$/)
    .transform((h) => h.toLowerCase())
    .optional(),
  action: z.string().min(1).max(100).optional(),
  target: z.string().min(1).max(200).optional(),
});
export type ListQuery = z.infer<typeof baseQuery>;

/** Parses a list's query string; a parameter the list does not filter on is a 400, not silently ignored. */
export function parseListQuery(list: ListName, query: unknown): ListQuery {
  const parsed = baseQuery.safeParse(query ?? {});
  if (!parsed.success) throw new InvalidQueryError(z.prettifyError(parsed.error).replaceAll("\n", "; "));
  const allowed = new Set<string>(["limit", "cursor", "from", "to", "format", ...Object.keys(LISTS[list].filters)]);
  const extra = Object.keys(query ?? {}).filter((k) => !allowed.has(k));
  if (extra.length) throw new InvalidQueryError(`${list} cannot be filtered by ${extra.join(", ")} (allowed: ${[...allowed].join(", ")})`);
  if (parsed.data.cursor) decodeCursor(parsed.data.cursor);
  return parsed.data;
}

/** Opaque page cursor: the (created_at, id) of the last row of the previous page. */
export function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify([createdAt, id])).toString("base64url");
}

export function decodeCursor(cursor: string): [createdAt: string, id: string] {
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(value) && value.length === 2 && isoTime.safeParse(value[0]).success && typeof value[1] === "string") {
      return value as [string, string];
    }
  } catch {}
  throw new InvalidQueryError("cursor: not a cursor this API returned");
}

/** The SQL of one page: filters and the keyset bound as parameters, never spliced. */
export function listStatement(
  list: ListName,
  query: ListQuery,
  limit: number,
  after?: [string, string],
): { text: string; values: unknown[] } {
  const spec = LISTS[list];
  const where: string[] = [];
  const values: unknown[] = [];
  const bind = (value: unknown) => {
    values.push(value);
    return `$${values.length}`;
  };
  for (const [param, column] of Object.entries(spec.filters) as [keyof ListQuery, string][]) {
    const value = query[param];
    if (value !== undefined) where.push(`"${column}" = ${bind(value)}`);
  }
  if (query.from) where.push(`"created_at" >= ${bind(query.from)}::timestamptz`);
  if (query.to) where.push(`"created_at" < ${bind(query.to)}::timestamptz`);
  if (after) where.push(`("created_at", "id") < (${bind(after[0])}::timestamptz, ${bind(after[1])}::${spec.idType})`);
  const columns = spec.columns.map((c) => `"${c}"`).join(", ");
  const filter = where.length ? `WHERE ${where.join(" AND ")}` : "";
  return {
    text: `SELECT ${columns} FROM ${spec.view} ${filter} ORDER BY "created_at" DESC, "id" DESC LIMIT ${bind(limit)}`,
    values,
  };
}

/** RFC 4180 CSV: fields with a comma, quote or line break are quoted, quotes doubled. */
export function toCsv(columns: readonly string[], rows: Row[]): string {
  const field = (value: Row[string]) => {
    if (value === null || value === undefined) return "";
    const text = String(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return rows.map((row) => columns.map((c) => field(row[c] ?? null)).join(",")).join("\r\n");
}
