import type { Config } from "@worldrouter/config";
import { Redis } from "ioredis";

/** Connection options from a redis:// or rediss:// URL, in the shape BullMQ, ioredis and Nest all accept. */
export interface RedisConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: object;
  maxRetriesPerRequest?: number | null;
  enableOfflineQueue?: boolean;
  connectTimeout?: number;
  commandTimeout?: number;
}

/** Where Redis is and how long to wait for it (`config.redis`); a bare URL (tests, tools) takes ioredis' defaults. */
export type RedisSettings = Pick<Config["redis"], "url" | "connectTimeoutMs" | "commandTimeoutMs"> | string;

/**
 * A command connection: every command fails after REDIS_COMMAND_TIMEOUT_MS instead of hanging on a stalled Redis.
 * Never block on it (XREADGROUP BLOCK, BullMQ workers): the timeout would cut the block short; use
 * `blockingRedisOptions` for those.
 */
export function redisOptions(redis: RedisSettings, extra: Partial<RedisConnection> = {}): RedisConnection {
  if (typeof redis === "string") return { ...fromUrl(redis), ...extra };
  return { ...fromUrl(redis.url), connectTimeout: redis.connectTimeoutMs, commandTimeout: redis.commandTimeoutMs, ...extra };
}

/**
 * A connection that blocks in reads (StreamReader's XREADGROUP/XREAD BLOCK, BullMQ workers): a connect timeout but no
 * per-command timeout, which would cut every block short. The BLOCK time bounds each read on the server, and TCP
 * keep-alive finds a dead socket. Not ioredis' `blockingTimeout` either: it answers "no entries" on its own timer,
 * and entries Redis hands over just after would sit pending on a consumer that never saw them.
 */
export function blockingRedisOptions(redis: RedisSettings, extra: Partial<RedisConnection> = {}): RedisConnection {
  if (typeof redis === "string") return { ...fromUrl(redis), ...extra };
  return { ...fromUrl(redis.url), connectTimeout: redis.connectTimeoutMs, ...extra };
}

function fromUrl(url: string): RedisConnection {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
}

/** Deletes every key of a REDIS_NAMESPACE (tests and benchmarks clean up their throwaway namespaces). */
export async function deleteRedisNamespace(url: string, namespace: string): Promise<void> {
  const redis = new Redis(redisOptions(url));
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `*${namespace}*`, "COUNT", 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}
