import { Global, Inject, Module, type DynamicModule, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { Redis } from "ioredis";
import { redisOptions, type RedisSettings } from "./redis.js";
import { processInstanceId } from "./stream-reader.js";

/**
 * A lease: at most one process at a time holds a named resource (the payee key's nonce, a periodic sweep), for a
 * bounded time, across every replica sharing one Redis. Each grant carries a fencing token from a counter that only
 * grows, so a holder that paused past its expiry (GC, a stalled event loop) and lost the lease to another finds
 * out at its next `assertHeld()` instead of acting on the resource with a stale view. Holders check before every
 * step that must not run twice concurrently (read the pending nonce, sign, persist, broadcast).
 */

// Take the lease only if free; the token comes from the counter, so a later grant always has a larger one.
// Both keys share one hash tag: the script stays valid on Redis Cluster.
const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '/' .. token, 'PX', ARGV[2])
return token`;
// Still ours (same holder and token)? Then extend it.
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const POLL_MS = 50;

export class LeaseLostError extends Error {
  override readonly name = "LeaseLostError";
}

export class LeaseBusyError extends Error {
  override readonly name = "LeaseBusyError";
}

/** One grant of a lease. Its `token` orders grants: a larger token is a later holder. */
export class LeaseGrant {
  constructor(
    private readonly lease: Lease,
    readonly token: number,
    private readonly value: string,
  ) {}

  /** Throws `LeaseLostError` unless this grant is still the current one; extends it by the lease's TTL when it is. */
  async assertHeld(): Promise<void> {
    if (!(await this.lease.renew(this.value))) {
      throw new LeaseLostError(`lease ${this.lease.name} (token ${this.token}) was lost to another holder or expired`);
    }
  }

  /** Gives the lease up if still ours (a stale holder's release deletes nothing). */
  release(): Promise<boolean> {
    return this.lease.release(this.value);
  }
}

export class Lease {
  private readonly key: string;
  private readonly fenceKey: string;

  constructor(
    private readonly redis: Redis,
    namespace: string,
    readonly name: string,
    private readonly ttlMs: number,
    private readonly holder = processInstanceId(),
  ) {
    this.key = `{${namespace}:lease:${name}}`;
    this.fenceKey = `{${namespace}:lease:${name}}:fence`;
  }

  /** One try: the grant, or null while another holder has the lease. */
  async tryAcquire(): Promise<LeaseGrant | null> {
    const token = (await this.redis.eval(ACQUIRE, 2, this.key, this.fenceKey, this.holder, this.ttlMs)) as number | null;
    return token === null ? null : new LeaseGrant(this, token, `${this.holder}/${token}`);
  }

  /** Waits up to `waitMs` for the lease; `LeaseBusyError` after that (a retryable condition for the caller). */
  async acquire(waitMs: number): Promise<LeaseGrant> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const grant = await this.tryAcquire();
      if (grant) return grant;
      if (Date.now() >= deadline) throw new LeaseBusyError(`lease ${this.name} is held by another process`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** Runs `work` holding the lease, released afterwards whatever happens. */
  async withLease<T>(waitMs: number, work: (grant: LeaseGrant) => Promise<T>): Promise<T> {
    const grant = await this.acquire(waitMs);
    try {
      return await work(grant);
    } finally {
      await grant.release().catch(() => false); // it expires by itself if Redis is unreachable now
    }
  }

  /** @internal for `LeaseGrant` */
  async renew(value: string): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.key, value, this.ttlMs)) === 1;
  }

  /** @internal for `LeaseGrant` */
  async release(value: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 1, this.key, value)) === 1;
  }
}

/**
 * The leases of one process, on one Redis connection of their own (closed with `close()`); every lease name is
 * scoped to REDIS_NAMESPACE.
 */
export class Leases {
  private readonly redis: Redis;
  private readonly holder = processInstanceId();

  constructor(
    redis: RedisSettings,
    private readonly namespace: string,
  ) {
    this.redis = new Redis(redisOptions(redis, { maxRetriesPerRequest: 3 }));
    this.redis.on("error", () => {}); // surfaced by the failing command; ioredis reconnects by itself
  }

  lease(name: string, ttlMs: number): Lease {
    return new Lease(this.redis, this.namespace, name, ttlMs, this.holder);
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** One `Leases` per process, closed at shutdown (after in-flight jobs drained). */
@Global()
@Module({})
export class LeasesModule implements OnApplicationShutdown {
  static forRoot(config: Config): DynamicModule {
    return {
      module: LeasesModule,
      providers: [{ provide: Leases, useFactory: () => new Leases(config.redis, config.redis.namespace) }],
      exports: [Leases],
    };
  }

  constructor(@Inject(Leases) private readonly leases: Leases) {}

  async onApplicationShutdown() {
    await this.leases.close();
  }
}
