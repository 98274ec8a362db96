import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { CONFIG, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";

/**
 * Replay guard in Redis: a claim is one `SET NX PX` for a challenge id or tx hash, atomic across verifier
 * replicas. Postgres unique constraints remain the durable truth.
 */
@Injectable()
export class RedisReplayStore implements OnApplicationShutdown {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(@Inject(CONFIG) config: Config) {
    this.redis = new Redis(redisOptions(config.redis));
    this.prefix = `${config.redis.namespace}:mpp:`;
  }

  /** Claims `key` until `expires` (epoch ms); false when someone already holds it. */
  async tryClaim(key: string, expires: number): Promise<boolean> {
    const ttl = Math.max(1000, expires - Date.now());
    return (await this.redis.set(this.prefix + key, "1", "PX", ttl, "NX")) === "OK";
  }

  /**
   * Claims every key for `holder` until `expires`, or none, in one round trip: returns the keys someone else
   * already held (empty = all claimed). Keys won in a failed attempt are given back.
   */
  async tryClaimAll(keys: readonly string[], expires: number, holder = "1"): Promise<string[]> {
    const ttl = Math.max(1000, expires - Date.now());
    const pipeline = this.redis.pipeline();
    for (const key of keys) pipeline.set(this.prefix + key, holder, "PX", ttl, "NX");
    const results = (await pipeline.exec()) ?? [];
    const held: string[] = [];
    const won: string[] = [];
    keys.forEach((key, i) => {
      const [err, reply] = results[i] ?? [new Error("no reply")];
      if (err) throw err;
      (reply === "OK" ? won : held).push(key);
    });
    if (held.length > 0 && won.length > 0) await this.redis.del(...won.map((key) => this.prefix + key));
    return held;
  }

  /** Who holds a claim (the `holder` given to tryClaimAll), if anyone. */
  async holder(key: string): Promise<string | null> {
    return this.redis.get(this.prefix + key);
  }

  /** Gives a claim back (only its holder does, and only when nothing was paid under it). */
  async delete(key: string): Promise<void> {
    await this.redis.del(this.prefix + key);
  }

  async onApplicationShutdown() {
    this.redis.disconnect();
  }
}
