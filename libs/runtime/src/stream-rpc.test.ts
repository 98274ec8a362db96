import "reflect-metadata";
import { Controller, Inject, type INestMicroservice, Module } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { MessagePattern, Payload } from "@nestjs/microservices";
import { loadConfig, type Config } from "@worldrouter/config";
import { RPC_SERVER_GROUP, rpcReplyStreamKey, rpcRequestStreamKey } from "@worldrouter/contracts";
import { createMetricsRegistry } from "@worldrouter/observability";
import { Redis } from "ioredis";
import { firstValueFrom } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  createRpcClient,
  createRpcServer,
  ensureConsumerGroup,
  processInstanceId,
  redisOptions,
  RpcClientClosedError,
  RpcRemoteError,
  RpcTimeoutError,
  type StreamRpcClient,
  type StreamRpcServer,
} from "./index.js";

const config: Config = loadConfig({
  ...process.env,
  WORLD_FILE: "/nonexistent",
  PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
  LOG_LEVEL: "silent",
  RPC_RECLAIM_IDLE_MS: "1000",
});
const namespace = config.redis.namespace;

/** Every handler run, by replica, in order. */
const runs: { replica: string; pattern: string; key: string }[] = [];
/** Gated handlers wait until the test opens their gate. */
const gates = new Map<string, { opened: Promise<void>; open: () => void }>();
function gate(key: string) {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  gates.set(key, { opened, open });
  return open;
}

const REPLICA = Symbol("replica");

@Controller()
class TestController {
  constructor(@Inject(REPLICA) private readonly replica: string) {}

  @MessagePattern("test.double")
  double(@Payload() message: { n: number }) {
    runs.push({ replica: this.replica, pattern: "test.double", key: String(message.n) });
    return { doubled: message.n * 2 };
  }

  @MessagePattern("test.gated")
  async gated(@Payload() message: { key: string }) {
    runs.push({ replica: this.replica, pattern: "test.gated", key: message.key });
    await gates.get(message.key)?.opened;
    return { released: message.key };
  }

  @MessagePattern("test.fail")
  fail() {
    throw new Error("boom");
  }
}

let commands: Redis;
const apps: INestMicroservice[] = [];
const clients: StreamRpcClient[] = [];
beforeAll(() => {
  commands = new Redis(redisOptions(config.redis.url));
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(apps.splice(0).map((app) => app.close()));
});
afterAll(() => commands.disconnect());

/** One replica of a serving service (a Nest microservice on the transport); each test uses its own service name. */
async function startReplica(service: string, replica: string) {
  @Module({ controllers: [TestController], providers: [{ provide: REPLICA, useValue: replica }] })
  class ReplicaModule {}
  const metrics = createMetricsRegistry(`rpc-${replica}`);
  const server: StreamRpcServer = createRpcServer(config, service, metrics);
  const app: INestMicroservice = await NestFactory.createMicroservice(ReplicaModule, { strategy: server, logger: false });
  await app.listen();
  apps.push(app);
  return { app, server, metrics };
}

async function startClient(service: string): Promise<StreamRpcClient> {
  const client = createRpcClient(config, service, createMetricsRegistry("rpc-client"));
  await client.connect();
  clients.push(client);
  return client;
}

const serviceName = () => `svc-${processInstanceId()}`;
const until = async (condition: () => boolean | Promise<boolean>) => {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 10));
};

describe("Redis Streams RPC transport", () => {
  it("runs each request on exactly one of two replicas and answers every one", async () => {
    const service = serviceName();
    await startReplica(service, "a");
    await startReplica(service, "b");
    const client = await startClient(service);
    const n = Array.from({ length: 500 }, (_, i) => i);
    const replies = await Promise.all(n.map((i) => client.call("test.double", { n: i })));
    expect(replies).toEqual(n.map((i) => ({ doubled: i * 2 })));
    const handled = runs.filter((run) => run.pattern === "test.double" && (run.replica === "a" || run.replica === "b"));
    expect(handled.map((run) => Number(run.key)).sort((x, y) => x - y)).toEqual(n);
    // Nothing left behind: every request acknowledged and deleted.
    expect(await commands.xlen(rpcRequestStreamKey(namespace, service))).toBe(0);
  });

  it("answers through Nest's send() too, and reports a failing handler or an unknown pattern as RpcRemoteError", async () => {
    const service = serviceName();
    await startReplica(service, "c");
    const client = await startClient(service);
    expect(await firstValueFrom(client.send("test.double", { n: 21 }))).toEqual({ doubled: 42 });
    await expect(client.call("test.fail", {})).rejects.toBeInstanceOf(RpcRemoteError);
    await expect(client.call("test.unknown", {})).rejects.toThrow(/no handler for test\.unknown/);
    expect(() => client.emit("test.double", { n: 1 })).toThrow(/requests only/);
  });

  it("a request held by a replica that died is taken over by another replica and answered", async () => {
    const service = serviceName();
    const stream = rpcRequestStreamKey(namespace, service);
    await ensureConsumerGroup(commands, stream, RPC_SERVER_GROUP, "0");
    const client = await startClient(service);
    const answer = client.call("test.double", { n: 7 }, 60_000);
    // A replica reads the request, then dies before answering (it never acknowledges).
    let taken: unknown;
    await until(async () => {
      taken = await commands.xreadgroup("GROUP", RPC_SERVER_GROUP, "dead-replica", "COUNT", 1, "STREAMS", stream, ">");
      return taken !== null;
    });
    const { metrics } = await startReplica(service, "survivor");
    expect(await answer).toEqual({ doubled: 14 });
    expect(runs.filter((run) => run.replica === "survivor")).toEqual([{ replica: "survivor", pattern: "test.double", key: "7" }]);
    expect(await metrics.getSingleMetricAsString("wr_rpc_reclaimed_total")).toMatch(/wr_rpc_reclaimed_total\{[^}]*\} 1$/m);
  });

  it("a replica that is alive and slow keeps its request: nobody takes it over, whatever the idle time", async () => {
    const service = serviceName();
    const { server: slow } = await startReplica(service, "slow");
    const client = await startClient(service);
    const release = gate("slow-1");
    const answer = client.call("test.gated", { key: "slow-1" });
    await until(() => slow.inFlight === 1);
    const { server: other } = await startReplica(service, "other");
    // Well past RPC_RECLAIM_IDLE_MS (1 s): the running replica touches the request, so it is never idle that long.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(other.inFlight).toBe(0);
    release();
    expect(await answer).toEqual({ released: "slow-1" });
    expect(runs.filter((run) => run.key === "slow-1").map((run) => run.replica)).toEqual(["slow"]);
  });

  it("fails a call with RpcTimeoutError at its own timeout, drops the late reply, and does not run an expired request", async () => {
    const service = serviceName();
    const stream = rpcRequestStreamKey(namespace, service);
    const { server } = await startReplica(service, "late");
    const client = await startClient(service);
    const release = gate("late-1");
    await expect(client.call("test.gated", { key: "late-1" }, 200)).rejects.toBeInstanceOf(RpcTimeoutError);
    release();
    await until(() => server.inFlight === 0);
    expect(await client.call("test.double", { n: 1 })).toEqual({ doubled: 2 });

    // A request whose deadline passes while a dead replica holds it is dropped, not run, when taken over.
    await ensureConsumerGroup(commands, stream, RPC_SERVER_GROUP, "0");
    const app = apps.pop()!;
    await app.close();
    const expired = client.call("test.double", { n: 999 }, 100).catch((err: unknown) => err);
    await until(async () => (await commands.xreadgroup("GROUP", RPC_SERVER_GROUP, "dead", "COUNT", 1, "STREAMS", stream, ">")) !== null);
    expect(await expired).toBeInstanceOf(RpcTimeoutError);
    await startReplica(service, "after-expiry");
    await until(async () => (await commands.xlen(stream)) === 0);
    expect(runs.filter((run) => run.replica === "after-expiry")).toEqual([]);
  });

  it("drains on shutdown: an in-flight handler finishes and its caller gets the answer", async () => {
    const service = serviceName();
    const { app, server } = await startReplica(service, "draining");
    const client = await startClient(service);
    const release = gate("drain-1");
    const answer = client.call("test.gated", { key: "drain-1" });
    await until(() => server.inFlight === 1);
    apps.splice(apps.indexOf(app), 1);
    let closed = false;
    const closing = app.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed).toBe(false);
    release();
    await closing;
    expect(await answer).toEqual({ released: "drain-1" });
  });

  it("fails the calls still waiting when the client closes, and removes its reply stream", async () => {
    const service = serviceName();
    const client = await startClient(service);
    const waiting = client.call("test.double", { n: 3 }, 60_000).catch((err: unknown) => err);
    await until(async () => (await commands.xlen(rpcRequestStreamKey(namespace, service))) === 1);
    await client.close();
    expect(await waiting).toBeInstanceOf(RpcClientClosedError);
    expect(await commands.exists(rpcReplyStreamKey(namespace, client.instanceId))).toBe(0);
  });
});
