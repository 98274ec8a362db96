import { LIST_NAMES, LISTS } from "./report-lists.js";

/** OpenAPI 3.1 document of the ops API, built from the same list table the routes use. */
export function opsOpenApi(): Record<string, unknown> {
  const problem = {
    description: "RFC 9457 problem",
    content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
  };
  const errors = { "400": problem, "401": problem };
  const time = (description: string) => ({ in: "query", schema: { type: "string", format: "date-time" }, description });
  const paths: Record<string, unknown> = {
    "/ops/api/summary": {
      get: {
        summary:
          "Revenue, requests, estimated vs charged vs actual cost, margin per model and provider, payers, payments, refunds, settlements, channels and reconciliation over a range",
        parameters: [
          { name: "from", ...time("Range start (default: 24 h before `to`)") },
          { name: "to", ...time("Range end, exclusive (default: now)") },
          { name: "granularity", in: "query", schema: { type: "string", enum: ["minute", "hour", "day"], default: "hour" } },
        ],
        responses: { "200": { description: "Summary; money in token base units as decimal strings" }, ...errors },
      },
    },
    "/ops/api/payers/{address}": {
      get: {
        summary: "One payer: totals, payments by status, prepaid balance in the ledger",
        parameters: [{ name: "address", in: "path", required: true, schema: { type: "string", pattern: "^0x[0-9a-fA-F]{40}$" } }],
        responses: { "200": { description: "Payer" }, "404": problem, ...errors },
      },
    },
    "/ops/api/refunds/{paymentId}/retry": {
      post: {
        summary: "Retry a refund that gave up (status failed). Idempotent by Idempotency-Key; audited in ops_actions",
        parameters: [
          { name: "paymentId", in: "path", required: true, schema: { type: "string", format: "uuid" } },
          { name: "Idempotency-Key", in: "header", schema: { type: "string", pattern: "^[\\w.:-]{8,200}$" } },
        ],
        responses: {
          "201": { description: "The recorded action (performed: false when replayed)" },
          "404": problem,
          "409": problem,
          ...errors,
        },
      },
    },
  };
  for (const name of LIST_NAMES) {
    const spec = LISTS[name];
    paths[`/ops/api/${name}`] = {
      get: {
        summary: `${name}, newest first, keyset-paginated; format=csv exports every matching row`,
        parameters: [
          { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 500, default: 50 } },
          { name: "cursor", in: "query", schema: { type: "string" }, description: "`nextCursor` of the previous page" },
          { name: "from", ...time("created_at ≥ from") },
          { name: "to", ...time("created_at < to") },
          { name: "format", in: "query", schema: { type: "string", enum: ["json", "csv"], default: "json" } },
          ...Object.keys(spec.filters).map((filter) => ({ name: filter, in: "query", schema: { type: "string" } })),
        ],
        responses: {
          "200": {
            description: `Page of ${name}`,
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  properties: {
                    items: { type: "array", items: { type: "object", properties: Object.fromEntries(spec.columns.map((c) => [c, {}])) } },
                    nextCursor: { type: ["string", "null"] },
                  },
                },
              },
              "text/csv": { schema: { type: "string" } },
            },
          },
          ...errors,
        },
      },
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "WorldRouter ops API",
      version: "1",
      description: "Read-only ledger API and ops actions, on settlement's ops listener (OPS_HOST:OPS_PORT).",
    },
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "OPS_TOKEN" } },
      schemas: {
        Problem: {
          type: "object",
          required: ["type", "title", "status", "detail"],
          properties: { type: { type: "string" }, title: { type: "string" }, status: { type: "integer" }, detail: { type: "string" } },
        },
      },
    },
    paths,
  };
}
