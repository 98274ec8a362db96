import { createServer } from "node:http";
import type { NestFastifyApplication } from "@nestjs/platform-fastify";
import type { Config } from "@worldrouter/config";
import { counter, histogram, newRequestId } from "@worldrouter/observability";
import { METRICS } from "@worldrouter/runtime";
import type { Registry } from "prom-client";
import type { FastifyServerOptions } from "fastify";
import { problem, ProblemException } from "./problem.js";
import { sendProblem } from "./problem.filter.js";
import { budgetOf, RateLimits } from "./rate-limits.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The exact request bytes: the challenge binds to their digest. */
    rawBody?: Buffer;
    /** Who sent it, as the rate limits count clients (peer or first untrusted X-Forwarded-For hop). */
    clientKey?: string;
  }
}

/** Fastify setup: our request ids, a raw-body-keeping JSON parser, the body size limit (413 before parsing). */
export function configureHttp(app: NestFastifyApplication, config: Config): void {
  const metrics = app.get<Registry>(METRICS);
  const fastify = app.getHttpAdapter().getInstance();
  fastify.removeContentTypeParser("application/json");
  fastify.addContentTypeParser("application/json", { parseAs: "buffer", bodyLimit: config.gateway.maxBodyBytes }, (request, body, done) => {
    const raw = body as Buffer;
    request.rawBody = raw;
    if (raw.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(raw.toString("utf8")));
    } catch (err) {
      done(
        new ProblemException(
          problem(400, "invalid-json", "Invalid JSON", `request body is not valid JSON: ${(err as Error).message}`),
          {},
          { type: "invalid_request_error", code: "invalid_json" },
        ),
        undefined,
      );
    }
  });
  // Callback-style hooks: no promise per request on the hot path. The rate limit runs before the body is read.
  const limits = app.get(RateLimits);
  fastify.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    const budget = budgetOf(request);
    if (!budget) return done();
    request.clientKey = limits.clientOf(request.socket.remoteAddress, request.headers["x-forwarded-for"]);
    limits.admit(budget, request.clientKey).then((refusal) => {
      if (refusal) sendProblem(reply, refusal);
      else done();
    }, done);
  });
  const requests = counter(metrics, "wr_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]);
  const duration = histogram(metrics, "wr_http_request_duration_ms", "Time to the last byte of the response", ["route"]);
  fastify.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "unmatched";
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    duration.observe({ route }, reply.elapsedTime);
    done();
  });
}

configureHttp.adapterOptions = (config: Config): FastifyServerOptions => ({
  bodyLimit: config.gateway.maxBodyBytes,
  genReqId: () => newRequestId(),
  logger: false,
  // Slow clients (slow-loris): Node closes a connection whose headers, or whole request, arrive too slowly, and an idle
  // keep-alive connection. It checks every connectionsCheckingInterval, so that is kept well below the timeouts.
  serverFactory: (handler) => {
    const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = config.edge;
    return createServer(
      {
        headersTimeout: headersTimeoutMs,
        requestTimeout: requestTimeoutMs,
        keepAliveTimeout: keepAliveTimeoutMs,
        connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersTimeoutMs / 4))),
      },
      handler,
    );
  },
  // Let Nest's shutdown hooks drain: stop accepting, finish in-flight responses.
  forceCloseConnections: "idle",
});
