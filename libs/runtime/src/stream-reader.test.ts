import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimIdleEntries, processInstanceId, redisOptions, StreamReader, type StreamEntry } from "./index.js";

const url = process.env.REDIS_URL!;
const namespace = process.env.REDIS_NAMESPACE!;

let commands: Redis;
beforeAll(() => {
  commands = new Redis(redisOptions(url));
});
afterAll(() => commands.disconnect());

const streamKey = () => `${namespace}:test:stream:${processInstanceId()}`;
const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
};

function collectingReader(
  stream: string,
  options: { group?: { name: string; consumer: string }; capacity?: () => number; startId?: string } = {},
) {
  const seen: StreamEntry[] = [];
  const errors: Error[] = [];
  const reader = new StreamReader({
    redis: url,
    commands,
    stream,
    capacity: options.capacity ?? (() => 100),
    blockMs: 5_000,
    onEntries: (entries) => void seen.push(...entries),
    onError: (err) => void errors.push(err),
    ...(options.group ? { group: options.group } : {}),
    ...(options.startId ? { startId: options.startId } : {}),
  });
  return { reader, seen, errors };
}

describe("StreamReader", () => {
  it("delivers each entry of a consumer group to exactly one of two readers", async () => {
    const stream = streamKey();
    const a = collectingReader(stream, { group: { name: "g", consumer: "a" } });
    const b = collectingReader(stream, { group: { name: "g", consumer: "b" } });
    await Promise.all([a.reader.start(), b.reader.start()]);
    for (let i = 0; i < 200; i++) await commands.xadd(stream, "*", "n", String(i));
    await until(() => a.seen.length + b.seen.length === 200);
    await Promise.all([a.reader.stop(), b.reader.stop()]);
    const values = [...a.seen, ...b.seen].map((entry) => Number(entry.fields[1])).sort((x, y) => x - y);
    expect(values).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(a.errors).toEqual([]);
  });

  it("tails a stream from its current end, in order, and every tail sees every entry", async () => {
    const stream = streamKey();
    await commands.xadd(stream, "*", "n", "before");
    const a = collectingReader(stream);
    const b = collectingReader(stream);
    await Promise.all([a.reader.start(), b.reader.start()]);
    for (let i = 0; i < 50; i++) await commands.xadd(stream, "*", "n", String(i));
    await until(() => a.seen.length === 50 && b.seen.length === 50);
    await Promise.all([a.reader.stop(), b.reader.stop()]);
    expect(a.seen.map((entry) => entry.fields[1])).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
    expect(b.seen.map((entry) => entry.id)).toEqual(a.seen.map((entry) => entry.id));
  });

  it("reads no more than the owner's capacity, and resumes on wake()", async () => {
    const stream = streamKey();
    let room = 3;
    const r = collectingReader(stream, { group: { name: "g", consumer: "c" }, capacity: () => room - r.seen.length });
    for (let i = 0; i < 10; i++) await commands.xadd(stream, "*", "n", String(i));
    await r.reader.start();
    await until(() => r.seen.length === 3);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(r.seen).toHaveLength(3);
    room = 10;
    r.reader.wake();
    await until(() => r.seen.length === 10);
    await r.reader.stop();
  });

  it("stops at once although its read is blocked, losing nothing: undelivered entries go to the next consumer", async () => {
    const stream = streamKey();
    const first = collectingReader(stream, { group: { name: "g", consumer: "first" } });
    await first.reader.start();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await first.reader.stop();
    await commands.xadd(stream, "*", "n", "after-stop");
    const next = collectingReader(stream, { group: { name: "g", consumer: "next" } });
    await next.reader.start();
    await until(() => next.seen.length === 1);
    await next.reader.stop();
    expect(first.seen).toEqual([]);
    const [count, , , consumers] = (await commands.xpending(stream, "g")) as [number, string, string, [string, string][]];
    expect(count).toBe(1);
    expect(consumers).toEqual([["next", "1"]]);
  });

  it("recreates its group when the stream vanished (Redis flushed), and keeps reading", async () => {
    const stream = streamKey();
    const r = collectingReader(stream, { group: { name: "g", consumer: "c" } });
    await r.reader.start();
    await commands.del(stream);
    await commands.xadd(stream, "*", "n", "x");
    // The group went with the stream: until recreated, reads fail with NOGROUP and the entry waits.
    await until(() => r.seen.length === 1);
    await r.reader.stop();
    expect(r.errors.some((err) => /NOGROUP/.test(err.message))).toBe(true);
  });
});

describe("claimIdleEntries", () => {
  it("hands a dead consumer's pending entries to a live one once idle long enough", async () => {
    const stream = streamKey();
    const dead = collectingReader(stream, { group: { name: "g", consumer: "dead" } });
    await dead.reader.start();
    for (let i = 0; i < 5; i++) await commands.xadd(stream, "*", "n", String(i));
    await until(() => dead.seen.length === 5);
    await dead.reader.stop();
    expect(await claimIdleEntries(commands, stream, "g", "live", 60_000, 100)).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const claimed = await claimIdleEntries(commands, stream, "g", "live", 20, 3);
    expect(claimed.map((entry) => entry.fields[1])).toEqual(["0", "1", "2"]);
    const rest = await claimIdleEntries(commands, stream, "g", "live", 20, 100);
    expect(rest.map((entry) => entry.fields[1])).toEqual(["3", "4"]);
    const pending = (await commands.xpending(stream, "g", "-", "+", 10)) as [string, string][];
    expect(new Set(pending.map(([, consumer]) => consumer))).toEqual(new Set(["live"]));
  });
});
