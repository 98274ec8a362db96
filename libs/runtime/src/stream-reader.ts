import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Redis } from "ioredis";
import { blockingRedisOptions, type RedisSettings } from "./redis.js";

/**
 * The one blocking-read loop over Redis Streams, shared by every stream consumer (inference dispatch, the gateway's
 * reply stream, the RPC transport, the money-event pipeline). It owns a connection that does nothing but block in
 * XREADGROUP / XREAD, reads only as many entries as its owner has room for, and stops cleanly: the blocked read is
 * ended with CLIENT UNBLOCK … TIMEOUT (dropping the connection instead could lose entries Redis delivered in that
 * instant, leaving them pending on a consumer that no longer exists). Acknowledging is the owner's business.
 */

/** A unique name for this process: `host-pid-random` (consumer names, reply streams, lease holders). */
export function processInstanceId(): string {
  return `${hostname().replace(/[^A-Za-z0-9_-]/g, "")}-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** One stream entry: its id and its flat field/value list as Redis returns it. */
export interface StreamEntry {
  id: string;
  fields: string[];
}

export interface StreamReaderOptions {
  redis: RedisSettings;
  /** A connection of the owner's for the few non-blocking commands the reader needs (XGROUP CREATE, CLIENT UNBLOCK). */
  commands: Redis;
  stream: string;
  /**
   * Read as one consumer of a group (each entry goes to exactly one consumer of the group, and stays pending until
   * acknowledged); without, tail the stream (every reader sees every entry). `startId` is where a new group (or a
   * tail) starts: "0" = the whole stream, "$" = new entries only.
   */
  group?: { name: string; consumer: string; startId?: string };
  /** Where a tail read starts (no group). Default "$". */
  startId?: string;
  /** How many entries the owner can take now; 0 = the reader waits for `wake()`. */
  capacity: () => number;
  /** How long one read blocks when the stream is idle. */
  blockMs: number;
  /** Receives each read's entries, in stream order; awaited before the next read. */
  onEntries: (entries: StreamEntry[]) => void | Promise<void>;
  /** A failed read (retried after a short pause) or a failure of `onEntries`. */
  onError: (err: Error) => void;
}

const RETRY_PAUSE_MS = 200;

export class StreamReader {
  private readonly reader: Redis;
  private readonly options: StreamReaderOptions;
  private lastId: string;
  private readerId: number | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private woken: (() => void) | undefined;

  constructor(options: StreamReaderOptions) {
    this.options = options;
    this.lastId = options.startId ?? "$";
    this.reader = new Redis({ ...blockingRedisOptions(options.redis), lazyConnect: true, maxRetriesPerRequest: null });
    this.reader.on("error", (err: Error) => options.onError(err));
  }

  async start(): Promise<void> {
    await this.reader.connect();
    this.readerId = (await this.reader.client("ID")) as number;
    // A tail from "$" must pin the current last id now, or entries added before the first read would be missed.
    if (!this.options.group && this.lastId === "$") this.lastId = await this.currentLastId();
    await this.ensureGroup();
    this.loop = this.run();
  }

  /** The owner has room again (after `capacity()` returned 0). */
  wake(): void {
    const woken = this.woken;
    this.woken = undefined;
    woken?.();
  }

  /** Ends the loop after the read in progress (unblocked at once) has been handed over; closes the connection. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.readerId !== undefined) await this.options.commands.client("UNBLOCK", this.readerId, "TIMEOUT").catch(() => undefined);
    this.wake();
    await this.loop;
    this.reader.disconnect();
  }

  /** Creates the group (and the stream) if missing; a no-op for tail reads. */
  async ensureGroup(): Promise<void> {
    const { group, stream, commands } = this.options;
    if (!group) return;
    await ensureConsumerGroup(commands, stream, group.name, group.startId ?? "0");
  }

  private async run(): Promise<void> {
    const { options } = this;
    while (!this.stopping) {
      const count = options.capacity();
      if (count <= 0) {
        await new Promise<void>((resolve) => (this.woken = resolve));
        continue;
      }
      let entries: StreamEntry[];
      try {
        entries = await this.read(count);
      } catch (err) {
        if (this.stopping) return;
        options.onError(err as Error);
        // The stream (and its group) vanished, e.g. Redis was flushed or restarted without persistence: recreate it.
        if (/NOGROUP/.test((err as Error).message)) await this.ensureGroup().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
        continue;
      }
      if (entries.length === 0) continue;
      if (!options.group) this.lastId = entries[entries.length - 1]!.id;
      try {
        await options.onEntries(entries);
      } catch (err) {
        options.onError(err as Error);
      }
    }
  }

  private async read(count: number): Promise<StreamEntry[]> {
    const { group, stream, blockMs } = this.options;
    const reply = (
      group
        ? await this.reader.xreadgroup("GROUP", group.name, group.consumer, "COUNT", count, "BLOCK", blockMs, "STREAMS", stream, ">")
        : await this.reader.xread("COUNT", count, "BLOCK", blockMs, "STREAMS", stream, this.lastId)
    ) as [string, [string, string[]][]][] | null;
    return toEntries(reply?.[0]?.[1]);
  }

  private async currentLastId(): Promise<string> {
    const last = (await this.options.commands.xrevrange(this.options.stream, "+", "-", "COUNT", 1)) as [string, string[]][];
    return last[0]?.[0] ?? "0-0";
  }
}

/** XGROUP CREATE … MKSTREAM, tolerating a group that already exists. */
export async function ensureConsumerGroup(redis: Redis, stream: string, group: string, startId = "0"): Promise<void> {
  try {
    await redis.xgroup("CREATE", stream, group, startId, "MKSTREAM");
  } catch (err) {
    if (!/BUSYGROUP/.test((err as Error).message)) throw err;
  }
}

/**
 * Takes over, for `consumer`, up to `count` entries of the group that have been pending on any consumer for at least
 * `minIdleMs` (XAUTOCLAIM): how a live replica picks up what a dead one was holding. Entries deleted from the stream
 * meanwhile are dropped from the pending list by Redis and not returned.
 */
export async function claimIdleEntries(
  redis: Redis,
  stream: string,
  group: string,
  consumer: string,
  minIdleMs: number,
  count: number,
): Promise<StreamEntry[]> {
  const claimed: StreamEntry[] = [];
  let cursor = "0-0";
  do {
    const [next, entries] = (await redis.xautoclaim(stream, group, consumer, minIdleMs, cursor, "COUNT", count - claimed.length)) as [
      string,
      [string, string[] | null][],
      string[]?,
    ];
    claimed.push(...toEntries(entries));
    cursor = next;
  } while (cursor !== "0-0" && claimed.length < count);
  return claimed;
}

/** XINFO replies are flat [key, value, key, value, …] arrays. */
export function flatRecord(flat: unknown[]): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) record[String(flat[i])] = flat[i + 1];
  return record;
}

function toEntries(raw: [string, string[] | null][] | undefined): StreamEntry[] {
  const entries: StreamEntry[] = [];
  for (const [id, fields] of raw ?? []) if (fields) entries.push({ id, fields });
  return entries;
}
