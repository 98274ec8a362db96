import { Catch, Inject, type ArgumentsHost, type ExceptionFilter } from "@nestjs/common";
import type { Logger } from "@worldrouter/observability";
import { LOGGER } from "@worldrouter/runtime";
import type { FastifyReply } from "fastify";

/**
 * Errors of the ops API, each mapped to one RFC 9457 problem type and status here (the one table at this edge).
 * Anything else is a 500 whose detail stays in the log.
 */
export class OpsError extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    detail: string,
  ) {
    super(detail);
  }
}

export class UnauthorizedError extends OpsError {
  constructor(detail: string) {
    super(401, "ops-unauthorized", "Unauthorized", detail);
  }
}

export class InvalidQueryError extends OpsError {
  constructor(detail: string) {
    super(400, "invalid-query", "Invalid Query", detail);
  }
}

export class NotFoundError extends OpsError {
  constructor(detail: string) {
    super(404, "not-found", "Not Found", detail);
  }
}

/** The action does not apply to the target's current state (e.g. retrying a refund that has not failed). */
export class ActionConflictError extends OpsError {
  constructor(detail: string) {
    super(409, "ops-action-conflict", "Action Not Applicable", detail);
  }
}

const PROBLEM_BASE = "https://worldrouter.dev/problems/";

@Catch()
export class OpsProblemFilter implements ExceptionFilter {
  constructor(@Inject(LOGGER) private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost) {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const known = toOpsError(exception);
    if (known.status >= 500) this.logger.error({ err: exception }, "ops request failed");
    const headers: Record<string, string> = { "content-type": "application/problem+json", "cache-control": "no-store" };
    if (known.status === 401) headers["www-authenticate"] = 'Bearer realm="worldrouter-ops"';
    void reply
      .status(known.status)
      .headers(headers)
      .send({ type: `${PROBLEM_BASE}${known.slug}`, title: known.title, status: known.status, detail: known.message });
  }
}

function toOpsError(exception: unknown): OpsError {
  if (exception instanceof OpsError) return exception;
  const status =
    (exception as { getStatus?: () => number; statusCode?: number }).getStatus?.() ?? (exception as { statusCode?: number }).statusCode;
  if (status === 404) return new NotFoundError("no such ops route");
  if (status && status >= 400 && status < 500) return new OpsError(status, "bad-request", "Bad Request", (exception as Error).message);
  return new OpsError(500, "internal-error", "Internal Server Error", "the ops API failed; see the settlement log");
}
