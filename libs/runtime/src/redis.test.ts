import { createServer } from "node:net";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { blockingRedisOptions, processInstanceId, redisOptions } from "./index.js";

const settings = { url: process.env.REDIS_URL!, connectTimeoutMs: 2_000, commandTimeoutMs: 200 };
const stream = `${process.env.REDIS_NAMESPACE!}:test:timeouts:${processInstanceId()}`;
const connections: Redis[] = [];
const connect = (options: ReturnType<typeof redisOptions>) => {
  const redis = new Redis(options);
  redis.on("error", () => {});
  connections.push(redis);
  return redis;
};
afterAll(() => {
  for (const redis of connections) redis.disconnect();
});

describe("Redis timeouts (REDIS_COMMAND_TIMEOUT_MS) and blocking reads", () => {
  it("a command connection fails a command that outlives the command timeout", async () => {
    const commands = connect(redisOptions(settings));
    await expect(commands.ping()).resolves.toBe("PONG");
    // A read that blocks 1 s on an empty stream stands for a Redis that stopped answering.
    await expect(commands.xread("BLOCK", 1_000, "STREAMS", stream, "$")).rejects.toThrow(/Command timed out/);
  });

  it("a blocking connection waits out its whole BLOCK and still receives what arrives meanwhile", async () => {
    const reader = connect(blockingRedisOptions(settings));
    const writer = connect(redisOptions(settings));
    const started = Date.now();
    await expect(reader.xread("BLOCK", 600, "STREAMS", stream, "$")).resolves.toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    const read = reader.xread("BLOCK", 5_000, "STREAMS", stream, "$");
    await new Promise((resolve) => setTimeout(resolve, 700)); // past the command timeout
    await writer.xadd(stream, "*", "n", "1");
    const result = (await read) as [string, [string, string[]][]][];
    expect(result[0]![1].map(([, fields]) => fields)).toEqual([["n", "1"]]);
    await writer.del(stream);
  });

  it("a Redis that accepts connections but never answers fails each command after the timeout", async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const url = `redis://127.0.0.1:${(silent.address() as { port: number }).port}`;
      const redis = connect(redisOptions({ ...settings, url }, { maxRetriesPerRequest: 0 }));
      const started = Date.now();
      await expect(redis.ping()).rejects.toThrow(/timed out/);
      expect(Date.now() - started).toBeLessThan(5_000);
      redis.disconnect();
    } finally {
      silent.close();
    }
  });
});
