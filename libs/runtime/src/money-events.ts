import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { MONEY_EVENT_FIELD, MoneyEvent, moneyEventStreamKey } from "@worldrouter/contracts";
import { Redis } from "ioredis";
import { redisOptions } from "./redis.js";
import { CONFIG } from "./tokens.js";

/**
 * Adds money events to the money-event stream (`@worldrouter/contracts` money-events): one schema-checked XADD,
 * awaited, so a caller continues only once Redis holds the fact. No MAXLEN: trimming is settlement's, and only
 * below what every consumer group has acknowledged.
 */
@Injectable()
export class MoneyEventPublisher implements OnApplicationShutdown {
  private readonly redis: Redis;
  private readonly stream: string;

  constructor(@Inject(CONFIG) config: Config) {
    this.stream = moneyEventStreamKey(config.redis.namespace);
    // Commands wait for a reconnect instead of failing at once: a Redis restart delays the caller, it does not drop the fact.
    this.redis = new Redis(redisOptions(config.redis, { maxRetriesPerRequest: null, enableOfflineQueue: true }));
    this.redis.on("error", () => undefined);
  }

  /** Returns the entry id. */
  async publish(event: MoneyEvent): Promise<string> {
    const data = MoneyEvent.parse(event);
    return (await this.redis.xadd(this.stream, "*", MONEY_EVENT_FIELD, JSON.stringify(data))) as string;
  }

  async onApplicationShutdown() {
    await this.redis.quit().catch(() => undefined);
  }
}

@Module({})
export class MoneyEventsModule {
  static forRoot(): DynamicModule {
    return { module: MoneyEventsModule, global: true, providers: [MoneyEventPublisher], exports: [MoneyEventPublisher] };
  }
}
