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
