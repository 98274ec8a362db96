import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { cancelChannel } from "@worldrouter/contracts";
import type { Logger } from "@worldrouter/observability";
import { CONFIG, LOGGER, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";

/** How long a cancel for a request this process has not started yet is remembered (it may still be queued). */
const EARLY_CANCEL_TTL_MS = 5 * 60_000;

/**
 * Client-gone notices: one subscriber per worker process on `cancelChannel`; a message carries a request id
 * and aborts that request's upstream call.
 */
@Injectable()
export class InferenceCancellations implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly subscriber: Redis;
  private readonly running = new Map<string, AbortController>();
  /** Cancelled before they started here: request id → when. Insertion order = age order. */
  private readonly early = new Map<string, number>();

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.subscriber = new Redis({ ...redisOptions(config.redis), lazyConnect: true });
  }

  async onApplicationBootstrap() {
    this.subscriber.on("message", (_channel: string, requestId: string) => this.cancel(requestId));
    this.subscriber.on("error", (err: Error) => this.logger.warn({ err: err.message }, "cancel subscriber error"));
    await this.subscriber.connect();
    await this.subscriber.subscribe(cancelChannel(this.config.redis.namespace));
  }

  async onApplicationShutdown() {
    await this.subscriber.quit();
  }

  /** Starts tracking a request; its signal aborts when the client goes away. */
  track(requestId: string): AbortSignal {
    const controller = new AbortController();
    this.running.set(requestId, controller);
    if (this.early.delete(requestId)) controller.abort();
    return controller.signal;
  }

  untrack(requestId: string): void {
    this.running.delete(requestId);
  }

  /** Cancels every request running here (a worker whose drain limit passed). */
  cancelAll(): void {
    for (const controller of this.running.values()) controller.abort();
  }

  cancel(requestId: string): void {
    const controller = this.running.get(requestId);
    if (controller) {
      controller.abort();
      return;
    }
    const now = Date.now();
    this.early.set(requestId, now);
    for (const [id, at] of this.early) {
      if (now - at < EARLY_CANCEL_TTL_MS) break;
      this.early.delete(id);
    }
  }
}
