import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { encodeChunkBatch, encodeReplyEntry, type StreamMessage } from "@worldrouter/contracts";
import { CONFIG, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";

/** Approximate cap of a reply stream: far more than a gateway has unread, bounded if a gateway died. */
const STREAM_MAX_LENGTH = "100000";
/** A dead gateway's stream disappears after this; refreshed by the first request to it each TTL_REFRESH_MS. */
const STREAM_TTL_MS = 3_600_000;
const TTL_REFRESH_MS = 60_000;
/** Unacknowledged XADDs per request before we wait for Redis (backpressure). */
const MAX_IN_FLIGHT = 256;

type Command = ["xadd", ...string[]] | ["pexpire", string, number];
interface Queued {
  command: Command;
  settle: (err: Error | null) => void;
}

/**
 * Writes StreamMessages to gateways' reply streams (entry format: `@worldrouter/contracts` reply-entry).
 *
 * One connection for every request of the process. Batching is by burst: the first command of a tick is written
 * at once (a request's first chunk must not wait: that is TTFT), the others issued in the same tick — the rest
 * of an upstream read, other requests' chunks — leave together in one pipeline when the tick ends. Order is the
 * call order (one connection). ioredis's auto-pipelining would hold the first command back until setImmediate.
 */
@Injectable()
export class ReplyStreams implements OnApplicationShutdown {
  private readonly redis: Redis;
  private burst: Queued[] | undefined;
  /** Reply stream → when this process last refreshed its TTL (one entry per gateway instance). */
  private readonly ttlRefreshedAt = new Map<string, number>();

  constructor(@Inject(CONFIG) config: Config) {
    this.redis = new Redis(redisOptions(config.redis));
  }

  open(stream: string, requestId: string): ReplyWriter {
    return new ReplyWriter((command) => this.send(command), stream, requestId, this.ttlDue(stream));
  }

  private ttlDue(stream: string): boolean {
    const now = Date.now();
    if (now - (this.ttlRefreshedAt.get(stream) ?? 0) < TTL_REFRESH_MS) return false;
    this.ttlRefreshedAt.set(stream, now);
    return true;
  }

  async onApplicationShutdown() {
    await this.redis.quit();
  }

  private send(command: Command): Promise<unknown> {
    if (this.burst)
      return new Promise((resolve, reject) => this.burst!.push({ command, settle: (err) => (err ? reject(err) : resolve(undefined)) }));
    this.burst = [];
    process.nextTick(() => this.flushBurst());
    return (this.redis[command[0]] as (...args: unknown[]) => Promise<unknown>)(...command.slice(1));
  }

  private flushBurst(): void {
    const queued = this.burst!;
    this.burst = undefined;
    if (queued.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const { command } of queued) (pipeline[command[0]] as (...args: unknown[]) => unknown)(...command.slice(1));
    pipeline.exec().then(
      (results) => {
        for (const [i, [err]] of (results ?? []).entries()) queued[i]!.settle(err);
      },
      (err: Error) => {
        for (const q of queued) q.settle(err);
      },
    );
  }
}

/**
 * One request's writes to its gateway's reply stream. A chunk that starts a tick is written at once; chunks that
 * follow it in the same tick (the rest of one upstream read) are held and leave as ONE entry with a `data` field
 * per chunk when the tick ends, so a burst of N chunks costs one XADD instead of N.
 */
export class ReplyWriter {
  private inFlight = 0;
  private last: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;
  private tickOpen = false;
  private held: string[] = [];

  constructor(
    private readonly send: (command: Command) => Promise<unknown>,
    private readonly stream: string,
    private readonly requestId: string,
    /** Refresh the stream's TTL with the first write. */
    private refreshTtl: boolean,
  ) {}

  /** Sends without waiting; returns a promise only when the caller should wait (too many unacknowledged). */
  write(message: StreamMessage): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    if (message.type === "chunk" && this.tickOpen) {
      this.held.push(message.data);
      return undefined;
    }
    this.releaseHeld();
    this.xadd(encodeReplyEntry(message));
    if (message.type === "chunk") {
      this.tickOpen = true;
      process.nextTick(() => {
        this.tickOpen = false;
        this.releaseHeld();
      });
    }
    return this.inFlight >= MAX_IN_FLIGHT ? this.flush() : undefined;
  }

  /** Waits until Redis acknowledged every write (replies arrive in order, so the last one suffices). */
  async flush(): Promise<void> {
    this.releaseHeld();
    await this.last;
    if (this.failure) throw this.failure;
  }

  private releaseHeld(): void {
    if (this.held.length === 0) return;
    const fields = encodeChunkBatch(this.held);
    this.held = [];
    this.xadd(fields);
  }

  private xadd(fields: string[]): void {
    this.track(this.send(["xadd", this.stream, "MAXLEN", "~", STREAM_MAX_LENGTH, "*", "requestId", this.requestId, ...fields]));
    if (this.refreshTtl) {
      this.refreshTtl = false;
      this.track(this.send(["pexpire", this.stream, STREAM_TTL_MS]));
    }
  }

  private track(sent: Promise<unknown>): void {
    this.inFlight++;
    this.last = sent.then(
      () => void this.inFlight--,
      (err: Error) => {
        this.inFlight--;
        this.failure ??= err;
      },
    );
  }
}
