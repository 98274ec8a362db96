import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { MONEY_EVENT_FIELD, MONEY_EVENTS_GROUP, moneyEventStreamKey, parkedMoneyEventStreamKey } from "@worldrouter/contracts";
import type { Logger } from "@worldrouter/observability";
import { CONFIG, claimIdleEntries, flatRecord, LOGGER, redisOptions, type StreamEntry } from "@worldrouter/runtime";
import { Redis } from "ioredis";

/** How far the settlement group is behind the money-event stream. */
export interface MoneyEventBacklog {
  /** Entries added and not yet delivered to any settlement replica (false also when the group does not exist yet). */
  undelivered: boolean;
  /** XINFO GROUPS `lag` (null when Redis cannot tell, e.g. the group is missing). */
  lag: number | null;
  /** Entries delivered and not acknowledged (being applied, deferred, or held by a dead replica). */
  pending: number;
  /** Age of the oldest pending entry, from its id (ms); null without pending entries. */
  oldestPendingAgeMs: number | null;
}

/**
 * The money-event stream's Redis side for settlement (the only code here that talks to it besides the reader):
 * acknowledging, parking, reclaiming, the group's backlog, and trimming below what every group acknowledged.
 */
@Injectable()
export class MoneyEventStream implements OnApplicationShutdown {
  readonly key: string;
  readonly parkedKey: string;
  /** Non-blocking commands (the blocking read has its own connection in the StreamReader). */
  readonly commands: Redis;

  constructor(@Inject(CONFIG) config: Config, @Inject(LOGGER) logger: Logger) {
    this.key = moneyEventStreamKey(config.redis.namespace);
    this.parkedKey = parkedMoneyEventStreamKey(config.redis.namespace);
    this.commands = new Redis({ ...redisOptions(config.redis), lazyConnect: true });
    this.commands.on("error", (err: Error) => logger.warn({ err: err.message }, "money-event stream redis error"));
  }

  async connect(): Promise<void> {
    if (this.commands.status === "wait") await this.commands.connect();
  }

  async acknowledge(ids: string[]): Promise<void> {
    if (ids.length) await this.commands.xack(this.key, MONEY_EVENTS_GROUP, ...ids);
  }

  /** Parks each entry with its error and acknowledges it, atomically (MULTI): never parked twice nor lost. */
  async park(parked: { entry: StreamEntry; error: string }[]): Promise<void> {
    if (!parked.length) return;
    const multi = this.commands.multi();
    for (const { entry, error } of parked) {
      const raw = fieldOf(entry, MONEY_EVENT_FIELD) ?? JSON.stringify(entry.fields);
      multi.xadd(this.parkedKey, "*", "id", entry.id, MONEY_EVENT_FIELD, raw, "error", error);
    }
    multi.xack(this.key, MONEY_EVENTS_GROUP, ...parked.map((p) => p.entry.id));
    await multi.exec();
  }

  /** Entries pending on any replica for at least `minIdleMs`, now this consumer's (a dead replica's batch). */
  claimIdle(consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]> {
    return claimIdleEntries(this.commands, this.key, MONEY_EVENTS_GROUP, consumer, minIdleMs, count);
  }

  async backlog(): Promise<MoneyEventBacklog> {
    const lastGenerated = await this.lastGeneratedId();
    const group = (await this.groups()).find((g) => g.name === MONEY_EVENTS_GROUP);
    if (!group) return { undelivered: lastGenerated !== null, lag: null, pending: 0, oldestPendingAgeMs: null };
    const [pending, oldest] = (await this.commands.xpending(this.key, MONEY_EVENTS_GROUP)) as [number, string | null, ...unknown[]];
    return {
      undelivered: lastGenerated !== null && compareIds(group.lastDeliveredId, lastGenerated) < 0,
      lag: group.lag,
      pending,
      oldestPendingAgeMs: pending > 0 && oldest ? Math.max(0, Date.now() - idTime(oldest)) : null,
    };
  }

  /**
   * XTRIM MINID at the lowest id some group may still need: per group, its oldest pending entry, else its last
   * delivered id (every entry at or below it is acknowledged). The groups are read before their pending lists, so
   * an entry delivered in between has an id above the last-delivered id read, and is kept. No group: no trim.
   * Returns how many entries were removed.
   */
  async trimAcknowledged(): Promise<number> {
    const groups = await this.groups();
    if (!groups.length) return 0;
    let floor: string | null = null;
    for (const group of groups) {
      const [pending, oldest] = (await this.commands.xpending(this.key, group.name)) as [number, string | null, ...unknown[]];
      const needed = pending > 0 && oldest && compareIds(oldest, group.lastDeliveredId) < 0 ? oldest : group.lastDeliveredId;
      if (floor === null || compareIds(needed, floor) < 0) floor = needed;
    }
    if (floor === null || floor === "0-0") return 0;
    return (await this.commands.xtrim(this.key, "MINID", floor)) as number;
  }

  async onApplicationShutdown() {
    await this.commands.quit().catch(() => undefined);
  }

  private async groups(): Promise<{ name: string; lastDeliveredId: string; lag: number | null }[]> {
    try {
      const groups = (await this.commands.xinfo("GROUPS", this.key)) as unknown[][];
      return groups.map((flat) => {
        const g = flatRecord(flat);
        return { name: String(g.name), lastDeliveredId: String(g["last-delivered-id"]), lag: typeof g.lag === "number" ? g.lag : null };
      });
    } catch (err) {
      if (/no such key/i.test((err as Error).message)) return [];
      throw err;
    }
  }

  private async lastGeneratedId(): Promise<string | null> {
    try {
      const info = flatRecord((await this.commands.xinfo("STREAM", this.key)) as unknown[]);
      const last = String(info["last-generated-id"]);
      return last === "0-0" ? null : last;
    } catch (err) {
      if (/no such key/i.test((err as Error).message)) return null;
      throw err;
    }
  }
}

function fieldOf(entry: StreamEntry, name: string): string | undefined {
  for (let i = 0; i + 1 < entry.fields.length; i += 2) if (entry.fields[i] === name) return entry.fields[i + 1];
  return undefined;
}

/** The ms time in a stream id (`<ms>-<seq>`). */
export function idTime(id: string): number {
  return Number(id.slice(0, id.indexOf("-")));
}

export function compareIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split("-").map(BigInt) as [bigint, bigint];
  return am === bm ? (as === bs ? 0 : as < bs ? -1 : 1) : am < bm ? -1 : 1;
}
