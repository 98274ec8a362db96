import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { CONFIG, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";

/**
 * Replay guard in Redis: `tryClaim` is one `SET NX PX` for challenge ids and tx hashes, atomic across verifier
 * replicas. Postgres unique constraints remain the durable truth.
 */
@Injectable()
export class RedisReplayStore implements OnApplicationShutdown {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(@Inject(CONFIG) config: Config) {
    this.redis = new Redis(redisOptions(config.redis.url));
    this.prefix = `${config.redis.namespace}:mpp:`;
  }

  /** Claims `key` until `expires` (epoch ms); false when someone already holds it. */
  async tryClaim(key: string, expires: number): Promise<boolean> {
    const ttl = Math.max(1000, expires - Date.now());
    return (await this.redis.set(this.prefix + key, "1", "PX", ttl, "NX")) === "OK";
  }

  /** Gives a claim back (only its holder does, and only when nothing was paid under it). */
  async delete(key: string): Promise<void> {
    await this.redis.del(this.prefix + key);
  }

  async onApplicationShutdown() {
    this.redis.disconnect();
  }
}
