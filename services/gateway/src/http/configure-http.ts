import type { NestFastifyApplication } from "@nestjs/platform-fastify";
import type { Config } from "@worldrouter/config";
import { newRequestId } from "@worldrouter/observability";
import type { FastifyServerOptions } from "fastify";
import { problem, ProblemException } from "./problem.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The exact request bytes: the challenge binds to their digest. */
    rawBody?: Buffer;
  }
}

/** Fastify setup: our request ids, a raw-body-keeping JSON parser, the body size limit (413 before parsing). */
export function configureHttp(app: NestFastifyApplication, config: Config): void {
  const fastify = app.getHttpAdapter().getInstance();
  fastify.removeContentTypeParser("application/json");
  fastify.addContentTypeParser("application/json", { parseAs: "buffer", bodyLimit: config.gateway.maxBodyBytes }, (request, body, done) => {
    const raw = body as Buffer;
    request.rawBody = raw;
    if (raw.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(raw.toString("utf8")));
    } catch (err) {
      done(new ProblemException(problem(400, "invalid-json", "Invalid JSON", `request body is not valid JSON: ${(err as Error).message}`), {}, { type: "invalid_request_error", code: "invalid_json" }), undefined);
    }
  });
  fastify.addHook("onSend", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
}

configureHttp.adapterOptions = (config: Config): FastifyServerOptions => ({
  bodyLimit: config.gateway.maxBodyBytes,
  genReqId: () => newRequestId(),
  logger: false,
  keepAliveTimeout: 65_000,
  // Let Nest's shutdown hooks drain: stop accepting, finish in-flight responses.
  forceCloseConnections: "idle",
});
