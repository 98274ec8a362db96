import { HttpException } from "@nestjs/common";

/**
 * RFC 9457 problem details, with an OpenAI-style `error` member as an extension so both MPP clients and
 * OpenAI SDKs read the same body. Payment problems use the `https://paymentauth.org/problems/` types;
 * our own use `https://worldrouter.dev/problems/`.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  [extension: string]: unknown;
}

export const PROBLEM_BASE = "https://worldrouter.dev/problems/";

export class ProblemException extends Error {
  constructor(
    readonly problem: Problem,
    readonly headers: Record<string, string> = {},
    /** OpenAI error code/type for the `error` member (e.g. `model_not_found`). */
    readonly openai: { type: string; code: string | null; param?: string | null } = { type: "invalid_request_error", code: null },
  ) {
    // A problem is an expected answer (most often a 402), not a bug: skip the stack capture on this hot path.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(problem.detail);
    Error.stackTraceLimit = limit;
  }

  body(): Problem & { error: { message: string; type: string; code: string | null; param: string | null } } {
    return {
      ...this.problem,
      error: { message: this.problem.detail, type: this.openai.type, code: this.openai.code, param: this.openai.param ?? null },
    };
  }
}

export function problem(status: number, slug: string, title: string, detail: string, extra: Record<string, unknown> = {}): Problem {
  return { type: `${PROBLEM_BASE}${slug}`, title, status, detail, ...extra };
}

const HTTP_PROBLEMS: Record<number, [slug: string, title: string]> = {
  400: ["bad-request", "Bad Request"],
  404: ["not-found", "Not Found"],
  405: ["method-not-allowed", "Method Not Allowed"],
  413: ["body-too-large", "Payload Too Large"],
  415: ["unsupported-media-type", "Unsupported Media Type"],
};

/** Maps anything thrown while serving a request to the problem we answer with. */
export function toProblem(exception: unknown): ProblemException {
  if (exception instanceof ProblemException) return exception;
  const fastifyCode = (exception as { code?: string } | null)?.code;
  switch (fastifyCode) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ProblemException(problem(413, "body-too-large", "Payload Too Large", (exception as Error).message));
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ProblemException(
        problem(415, "unsupported-media-type", "Unsupported Media Type", "send the request body as application/json"),
        {},
        { type: "invalid_request_error", code: "unsupported_media_type" },
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new ProblemException(
        problem(400, "invalid-json", "Invalid JSON", "the request body is empty"),
        {},
        { type: "invalid_request_error", code: "invalid_json" },
      );
  }
  const status = exception instanceof HttpException ? exception.getStatus() : (exception as { statusCode?: number } | null)?.statusCode;
  if (status && status >= 400 && status < 500) {
    const [slug, title] = HTTP_PROBLEMS[status] ?? ["http-error", "Request Error"];
    return new ProblemException(problem(status, slug, title, (exception as Error).message));
  }
  return new ProblemException(
    problem(500, "internal-error", "Internal Server Error", "an unexpected error occurred; it has been logged"),
    {},
    { type: "server_error", code: null },
  );
}
