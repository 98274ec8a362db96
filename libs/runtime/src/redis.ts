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
}

export function redisOptions(url: string, extra: Partial<RedisConnection> = {}): RedisConnection {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
    ...extra,
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
