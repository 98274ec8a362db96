import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { CONFIG, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { clientKey, parseTrustedProxies, type TrustedProxies } from "./client-address.js";
import { problem, ProblemException } from "./problem.js";

/**
 * Per-client request budgets, shared by every gateway replica through Redis (rate-limiter-flexible, a fixed window of
 * RATE_LIMIT_WINDOW_SECONDS per budget and client). Three budgets, so that one kind of traffic cannot starve another:
 * `unpaid` (anything without a payment credential: quotes, 402s, model lists), `paid` (requests carrying
 * `Authorization: Payment`, verified or not) and `session` (session control: HEAD or a bodiless POST on the session
 * endpoint, i.e. opening, topping up or closing a channel). A client over its budget is kept off Redis in this process
 * until its window ends (inMemoryBlockOnConsumed), so a flood costs a map lookup per request. If Redis fails, each
 * replica falls back to an in-memory budget of the same size (insuranceLimiter) rather than letting everything through.
 */
export type Budget = "unpaid" | "paid" | "session";

const SESSION_PATH = "/x402/v1/chat/completions/stream";
/** Probes of the load balancer and orchestrator: never limited. */
const UNLIMITED_PATHS = new Set(["/healthz"]);

export function budgetOf(request: {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}): Budget | undefined {
  const query = request.url.indexOf("?");
  const path = query === -1 ? request.url : request.url.slice(0, query);
  if (UNLIMITED_PATHS.has(path)) return undefined;
  if (path === SESSION_PATH && (request.method === "HEAD" || (request.method === "POST" && isBodiless(request.headers)))) return "session";
  const authorization = request.headers.authorization;
  return typeof authorization === "string" && /^payment\s/i.test(authorization) ? "paid" : "unpaid";
}

function isBodiless(headers: Record<string, string | string[] | undefined>): boolean {
  return headers["transfer-encoding"] === undefined && (headers["content-length"] === undefined || headers["content-length"] === "0");
}

@Injectable()
export class RateLimits implements OnApplicationShutdown {
  private readonly redis: Redis;
  private readonly limiters: Record<Budget, RateLimiterRedis>;
  private readonly trusted: TrustedProxies;

  constructor(@Inject(CONFIG) config: Config) {
    const { windowSeconds, trustedProxies } = config.rateLimits;
    this.trusted = parseTrustedProxies(trustedProxies);
    // No offline queue: with Redis away a request fails over to the in-memory budget at once instead of waiting.
    this.redis = new Redis(redisOptions(config.redis, { enableOfflineQueue: false }));
    this.redis.on("error", () => {});
    const limiter = (budget: Budget) => {
      const points = config.rateLimits[budget];
      return new RateLimiterRedis({
        storeClient: this.redis,
        keyPrefix: `${config.redis.namespace}:ratelimit:${budget}`,
        points,
        duration: windowSeconds,
        inMemoryBlockOnConsumed: points + 1,
        insuranceLimiter: new RateLimiterMemory({ points, duration: windowSeconds }),
      });
    };
    this.limiters = { unpaid: limiter("unpaid"), paid: limiter("paid"), session: limiter("session") };
  }

  /** The request's client: its budget key (see client-address.ts). */
  clientOf(peer: string | undefined, forwardedFor: string | string[] | undefined): string {
    return clientKey(peer, forwardedFor, this.trusted);
  }

  /** Takes one request from the client's budget; a ProblemException (429 + Retry-After) when it is spent. */
  async admit(budget: Budget, client: string): Promise<ProblemException | undefined> {
    try {
      await this.limiters[budget].consume(client);
      return undefined;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      const retryAfter = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
      return new ProblemException(
        problem(429, "rate-limited", "Too Many Requests", `this client's ${budget} request budget is spent; retry in ${retryAfter} s`, {
          budget,
          retryAfter,
        }),
        { "retry-after": String(retryAfter) },
        { type: "rate_limit_error", code: "rate_limit_exceeded" },
      );
    }
  }

  onApplicationShutdown() {
    this.redis.disconnect();
  }
}
