import { Catch, Inject, type ArgumentsHost, type ExceptionFilter } from "@nestjs/common";
import type { Logger } from "@worldrouter/observability";
import { LOGGER } from "@worldrouter/runtime";
import type { FastifyReply } from "fastify";
import { toProblem, type ProblemException } from "./problem.js";

/** Every error leaves the gateway as application/problem+json (with an OpenAI-style `error` member). */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(@Inject(LOGGER) private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost) {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const mapped = toProblem(exception);
    if (mapped.problem.status >= 500) this.logger.error({ err: exception }, "request failed");
    sendProblem(reply, mapped);
  }
}

export function sendProblem(reply: FastifyReply, mapped: ProblemException): void {
  void reply
    .status(mapped.problem.status)
    .headers({ "content-type": "application/problem+json", "cache-control": "no-store", ...mapped.headers })
    .send(mapped.body());
}
