import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { CONFIG, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";

type Change = { op: "noop"; result: unknown } | { op: "set"; value: unknown; result: unknown } | { op: "delete"; result: unknown };

/** Connections reserved for `update` (WATCH is per connection, so each update needs one to itself). */
const UPDATE_CONNECTIONS = 4;

/**
 * mppx's atomic store backed by Redis: `tryClaim` is one `SET NX PX` (the hot-path replay guard for
 * tx hashes and challenge ids); `update` is an optimistic WATCH/MULTI read-modify-write (mppx's sponsor
 * budget), atomic across verifier replicas. Postgres unique constraints remain the durable truth.
 */
@Injectable()
export class RedisReplayStore implements OnApplicationShutdown {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly idle: Redis[] = [];
  private readonly waiting: ((connection: Redis) => void)[] = [];
  private readonly keyQueues = new Map<string, Promise<unknown>>();

  constructor(@Inject(CONFIG) config: Config) {
    this.redis = new Redis(redisOptions(config.redis.url));
    this.prefix = `${config.redis.namespace}:mpp:`;
    for (let i = 0; i < UPDATE_CONNECTIONS; i++) this.idle.push(this.redis.duplicate());
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

  /**
   * Atomic read-modify-write of one key; `fn` may run more than once (it is pure, per mppx's contract).
   * Updates of the same key from this process run one after another (mppx's sponsor budget is one hot key),
   * so WATCH only has to resolve conflicts between replicas instead of causing retry storms here.
   */
  update(key: string, fn: (current: unknown) => Change): Promise<unknown> {
    const previous = this.keyQueues.get(key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.watchedUpdate(key, fn));
    this.keyQueues.set(key, run);
    void run.finally(() => {
      if (this.keyQueues.get(key) === run) this.keyQueues.delete(key);
    }).catch(() => undefined);
    return run;
  }

  private async watchedUpdate(key: string, fn: (current: unknown) => Change): Promise<unknown> {
    const connection = await this.acquire();
    try {
      for (;;) {
        const full = this.prefix + key;
        await connection.watch(full);
        const raw = await connection.get(full);
        const change = fn(raw === null ? null : JSON.parse(raw));
        if (change.op === "noop") {
          await connection.unwatch();
          return change.result;
        }
        const multi = connection.multi();
        if (change.op === "set") multi.set(full, JSON.stringify(change.value));
        else multi.del(full);
        if ((await multi.exec()) !== null) return change.result; // null: the key changed under us, retry
      }
    } finally {
      this.release(connection);
    }
  }

  private acquire(): Promise<Redis> {
    const connection = this.idle.pop();
    return connection ? Promise.resolve(connection) : new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(connection: Redis) {
    const next = this.waiting.shift();
    if (next) next(connection);
    else this.idle.push(connection);
  }

  async onApplicationShutdown() {
    this.redis.disconnect();
    for (const connection of this.idle) connection.disconnect();
  }
}
