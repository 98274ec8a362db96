import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { CONFIG, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";

/**
 * mppx's atomic store backed by Redis: `tryClaim` is one `SET NX PXAT` (the hot-path replay guard for
 * tx hashes and challenge ids). Postgres unique constraints remain the durable truth.
 */
@Injectable()
export class RedisReplayStore implements OnApplicationShutdown {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(@Inject(CONFIG) config: Config) {
    this.redis = new Redis(redisOptions(config.redis.url));
    this.prefix = `${config.redis.namespace}:mpp:`;
  }

  async get(key: string): Promise<unknown> {
    const raw = await this.redis.get(this.prefix + key);
    return raw === null ? null : JSON.parse(raw);
  }

  async put(key: string, value: unknown): Promise<void> {
    await this.redis.set(this.prefix + key, JSON.stringify(value));
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(this.prefix + key);
  }

  /** Claims `key` until `expires` (epoch ms); false when someone already holds it. */
  async tryClaim(key: string, expires: number): Promise<boolean> {
    const ttl = Math.max(1000, expires - Date.now());
    return (await this.redis.set(this.prefix + key, JSON.stringify({ type: "mppx:replay", expires }), "PX", ttl, "NX")) === "OK";
  }

  async onApplicationShutdown() {
    this.redis.disconnect();
  }
}
