import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import type { StreamMessage } from "@worldrouter/contracts";
import { CONFIG, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";

/**
 * Writes StreamMessages to gateways' reply streams. Entry fields: `requestId`, `type`, and `data` (the
 * serialised chunk or completion; for `error` the JSON of {status, code, message, streamed}; none for `end`).
 * One connection with auto-pipelining: XADDs issued in the same tick, by any number of requests, leave in one
 * write; a request does not wait for its XADD before reading the next upstream chunk.
 */
@Injectable()
export class ReplyStreams implements OnApplicationShutdown {
  private readonly redis: Redis;

  constructor(@Inject(CONFIG) config: Config) {
    this.redis = new Redis({ ...redisOptions(config.redis.url), enableAutoPipelining: true });
  }

  open(stream: string, requestId: string): ReplyWriter {
    return new ReplyWriter(this.redis, stream, requestId);
  }

  async onApplicationShutdown() {
    await this.redis.quit();
  }
}

/** Approximate cap of a reply stream: far more than a gateway has unread, bounded if a gateway died. */
const STREAM_MAX_LENGTH = "100000";
/** A dead gateway's stream disappears after this; every request refreshes it. */
const STREAM_TTL_MS = 3_600_000;
/** Unacknowledged XADDs per request before we wait for Redis (backpressure). */
const MAX_IN_FLIGHT = 256;

export class ReplyWriter {
  private inFlight = 0;
  private last: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;
  private written = 0;

  constructor(
    private readonly redis: Redis,
    private readonly stream: string,
    private readonly requestId: string,
  ) {}

  /** Queues the XADD; returns a promise only when the caller should wait (too many unacknowledged). */
  write(message: StreamMessage): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    const sent = this.redis.xadd(this.stream, "MAXLEN", "~", STREAM_MAX_LENGTH, "*", "requestId", this.requestId, ...encodeFields(message));
    if (this.written++ === 0) void this.redis.pexpire(this.stream, STREAM_TTL_MS).catch(() => undefined);
    this.inFlight++;
    this.last = sent.then(
      () => void this.inFlight--,
      (err: Error) => {
        this.inFlight--;
        this.failure ??= err;
      },
    );
    return this.inFlight >= MAX_IN_FLIGHT ? this.flush() : undefined;
  }

  /** Waits until Redis acknowledged every write (replies arrive in order, so the last one suffices). */
  async flush(): Promise<void> {
    await this.last;
    if (this.failure) throw this.failure;
  }
}

function encodeFields(message: StreamMessage): string[] {
  switch (message.type) {
    case "chunk":
    case "completion":
      return ["type", message.type, "data", message.data];
    case "error":
      return ["type", "error", "data", JSON.stringify({ status: message.status, code: message.code, message: message.message, streamed: message.streamed })];
    case "end":
      return ["type", "end"];
  }
}
