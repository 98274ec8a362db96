import { BaseRpcContext, type CustomTransportStrategy, Server, type WritePacket } from "@nestjs/microservices";
import type { Config } from "@worldrouter/config";
import {
  decodeRpcRequest,
  encodeRpcReply,
  RPC_SERVER_GROUP,
  type RpcReply,
  type RpcRequest,
  rpcRequestStreamKey,
} from "@worldrouter/contracts";
import { counter, histogram } from "@worldrouter/observability";
import { Redis } from "ioredis";
import type { Counter, Histogram, Registry } from "prom-client";
import { redisOptions, type RedisSettings } from "./redis.js";
import { claimIdleEntries, flatRecord, processInstanceId, StreamReader, type StreamEntry } from "./stream-reader.js";

/** XREADGROUP BLOCK timeout (close() unblocks the read at once). */
const READ_BLOCK_MS = 5_000;
/** Approximate cap of a caller's reply stream: far more than a caller has unread; bounded if it died. */
const REPLY_STREAM_MAX_LENGTH = "10000";
/** A dead caller's reply stream disappears after this (refreshed by every reply). */
const REPLY_STREAM_TTL_MS = 3_600_000;
/** A consumer of the group that has held nothing and read nothing for this long is a replica that is gone. */
const FORGET_CONSUMER_AFTER_MS = 600_000;

export interface StreamRpcServerOptions {
  redis: RedisSettings;
  namespace: string;
  /** The serving service: its replicas share the request stream `rpcRequestStreamKey(namespace, service)`. */
  service: string;
  /** Requests handled at once by this process; the reader takes no more than there is room for. */
  concurrency: number;
  /** See RPC_RECLAIM_IDLE_MS. */
  reclaimIdleMs: number;
  metrics: Registry;
}

/** What a handler sees as the RPC context: the pattern and the request's stream entry id. */
export class StreamRpcContext extends BaseRpcContext<[pattern: string, entryId: string]> {
  getPattern(): string {
    return this.args[0];
  }
}

/**
 * Server side of the request/reply transport on Redis Streams (wire format: `@worldrouter/contracts` rpc-streams):
 * every replica of the serving service is one consumer of the request stream's group, so each request runs on
 * exactly one replica (Nest's stock Redis transport is pub/sub: every replica would run every request).
 *
 * A request is answered, then acknowledged and deleted. Requests whose caller's deadline has passed are skipped
 * (answered `expired`). A replica that dies holding requests leaves them pending in the group: every replica
 * keeps the idle time of the requests it is running near zero (XCLAIM … JUSTID to itself every third of
 * RPC_RECLAIM_IDLE_MS), so a request idle longer than that is held by a replica that is gone (or stalled that
 * long), and is taken over by another (XAUTOCLAIM) and rerun if its caller still waits. A rerun must be safe:
 * handlers are idempotent by their own keys. close() stops reading, lets in-flight handlers finish and answer.
 */
export class StreamRpcServer extends Server implements CustomTransportStrategy {
  /** This process's consumer name in the group. */
  readonly consumer = processInstanceId();
  private readonly streamKey: string;
  private readonly commands: Redis;
  private readonly reader: StreamReader;
  /** Request entry id → its run. */
  private readonly running = new Map<string, Promise<void>>();
  private timers: NodeJS.Timeout[] = [];
  private readonly requests: Counter<"pattern" | "outcome">;
  private readonly duration: Histogram<"pattern">;
  private readonly reclaimed: Counter;

  constructor(private readonly options: StreamRpcServerOptions) {
    super();
    this.streamKey = rpcRequestStreamKey(options.namespace, options.service);
    this.commands = new Redis({ ...redisOptions(options.redis), lazyConnect: true });
    const onError = (err: Error) => this.logger.warn(`rpc server redis error: ${err.message}`);
    this.commands.on("error", onError);
    // From "0": requests sent before any replica was up are taken too (their deadlines decide whether they run).
    this.reader = new StreamReader({
      redis: options.redis,
      commands: this.commands,
      stream: this.streamKey,
      group: { name: RPC_SERVER_GROUP, consumer: this.consumer, startId: "0" },
      capacity: () => options.concurrency - this.running.size,
      blockMs: READ_BLOCK_MS,
      onEntries: (entries) => {
        for (const entry of entries) this.start(entry);
      },
      onError,
    });
    this.requests = counter(options.metrics, "wr_rpc_requests_total", "RPC requests served, by pattern and outcome", [
      "pattern",
      "outcome",
    ]);
    this.duration = histogram(options.metrics, "wr_rpc_request_duration_ms", "RPC handler time, by pattern", ["pattern"]);
    this.reclaimed = counter(
      options.metrics,
      "wr_rpc_reclaimed_total",
      "RPC requests taken over from a replica that stopped signalling (crashed) holding them",
    );
  }

  listen(callback: (err?: unknown) => void): void {
    this.open().then(
      () => callback(),
      (err: unknown) => callback(err),
    );
  }

  private async open(): Promise<void> {
    for (const [pattern, handler] of this.messageHandlers)
      if (handler.isEventHandler) throw new Error(`the Redis Streams RPC transport carries requests only; event handler for ${pattern}`);
    await this.commands.connect();
    await this.reader.start();
    const every = Math.max(50, Math.floor(this.options.reclaimIdleMs / 3));
    const warn = (what: string) => (err: Error) => this.logger.warn(`rpc ${what} failed: ${err.message}`);
    this.timers = [
      setInterval(() => void this.touchRunning().catch(warn("in-flight touch")), every),
      setInterval(() => void this.reclaimIdle().catch(warn("reclaim")), every),
    ];
    for (const timer of this.timers) timer.unref();
  }

  /** Stops reading, lets the requests in flight finish and answer (still touched, so nobody takes them), then closes. */
  async close(): Promise<void> {
    const [touch, reclaim] = this.timers;
    clearInterval(reclaim);
    await this.reader.stop();
    await Promise.all(this.running.values());
    clearInterval(touch);
    this.timers = [];
    await this.commands.quit().catch(() => undefined);
  }

  on(): never {
    throw new Error("the Redis Streams RPC server has no events to listen to");
  }

  unwrap<T>(): T {
    return this.commands as T;
  }

  /** Requests being handled here now. */
  get inFlight(): number {
    return this.running.size;
  }

  private start(entry: StreamEntry): void {
    if (this.running.has(entry.id)) return;
    const run: Promise<void> = this.serve(entry)
      .catch((err: Error) => this.logger.warn(`rpc request ${entry.id} not answered (it is taken over later): ${err.message}`))
      .finally(() => {
        this.running.delete(entry.id);
        this.reader.wake();
      });
    this.running.set(entry.id, run);
  }

  private async serve({ id: entryId, fields }: StreamEntry): Promise<void> {
    const request = decodeRpcRequest(fields);
    if (!request) {
      this.logger.error(`malformed rpc request entry ${entryId} dropped`);
      this.requests.inc({ pattern: "unknown", outcome: "malformed" });
      await this.acknowledge(entryId);
      return;
    }
    if (request.deadline <= Date.now()) {
      this.requests.inc({ pattern: request.pattern, outcome: "expired" });
      await this.answer(entryId, request, { id: request.id, outcome: "expired" });
      return;
    }
    const started = performance.now();
    const reply = await this.runHandler(request, entryId);
    this.duration.observe({ pattern: request.pattern }, performance.now() - started);
    this.requests.inc({ pattern: request.pattern, outcome: reply.outcome });
    await this.answer(entryId, request, reply);
  }

  /** Runs the Nest handler (with its pipes, interceptors and exception filters); one reply: its last value or its error. */
  private runHandler(request: RpcRequest, entryId: string): Promise<RpcReply> {
    const handler = this.getHandlerByPattern(request.pattern);
    if (!handler)
      return Promise.resolve({ id: request.id, outcome: "error", body: { status: "error", message: `no handler for ${request.pattern}` } });
    const context = new StreamRpcContext([request.pattern, entryId]);
    return new Promise<RpcReply>((resolve) => {
      let response: unknown = null;
      const respond = (packet: WritePacket) => {
        if (packet.err !== undefined) resolve({ id: request.id, outcome: "error", body: errorBody(packet.err) });
        else if (packet.response !== undefined) response = packet.response;
        if (packet.isDisposed) resolve({ id: request.id, outcome: "ok", body: response });
      };
      const handling = this.handleRequest(
        context,
        async () => this.transformToObservable(await handler(request.payload, context)),
        respond,
      );
      Promise.resolve(handling).catch((err: unknown) => resolve({ id: request.id, outcome: "error", body: errorBody(err) }));
    });
  }

  /** The reply (with the reply stream's cap and TTL refreshed), then the request acknowledged and deleted: one round trip. */
  private async answer(entryId: string, request: RpcRequest, reply: RpcReply): Promise<void> {
    const results = await this.commands
      .pipeline()
      .xadd(request.replyTo, "MAXLEN", "~", REPLY_STREAM_MAX_LENGTH, "*", ...encodeRpcReply(reply))
      .pexpire(request.replyTo, REPLY_STREAM_TTL_MS)
      .xack(this.streamKey, RPC_SERVER_GROUP, entryId)
      .xdel(this.streamKey, entryId)
      .exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0]!;
  }

  private async acknowledge(entryId: string): Promise<void> {
    await this.commands.pipeline().xack(this.streamKey, RPC_SERVER_GROUP, entryId).xdel(this.streamKey, entryId).exec();
  }

  /** Resets the idle time of the requests running here: they are not up for reclaiming while this process is alive. */
  private async touchRunning(): Promise<void> {
    if (this.running.size === 0) return;
    await this.commands.xclaim(this.streamKey, RPC_SERVER_GROUP, this.consumer, 0, ...this.running.keys(), "JUSTID");
  }

  /** Takes over requests left idle by replicas that are gone (as many as there is room for), and forgets those replicas. */
  private async reclaimIdle(): Promise<void> {
    const room = this.options.concurrency - this.running.size;
    if (room > 0) {
      const entries = await claimIdleEntries(
        this.commands,
        this.streamKey,
        RPC_SERVER_GROUP,
        this.consumer,
        this.options.reclaimIdleMs,
        room,
      );
      for (const entry of entries) {
        if (this.running.has(entry.id)) continue;
        this.reclaimed.inc();
        this.logger.warn(`rpc request ${entry.id} taken over from a replica that stopped signalling`);
        this.start(entry);
      }
    }
    await this.forgetGoneConsumers();
  }

  /** Removes consumers that hold nothing and have not read for long (replicas that exited), so the group does not grow. */
  private async forgetGoneConsumers(): Promise<void> {
    const consumers = (await this.commands.xinfo("CONSUMERS", this.streamKey, RPC_SERVER_GROUP)) as unknown[][];
    for (const info of consumers) {
      const { name, pending, idle } = flatRecord(info);
      if (name === this.consumer || Number(pending) > 0 || Number(idle) < FORGET_CONSUMER_AFTER_MS) continue;
      await this.commands.xgroup("DELCONSUMER", this.streamKey, RPC_SERVER_GROUP, String(name));
    }
  }
}

/** Errors travel as JSON: an Error's own fields are not enumerable. */
function errorBody(err: unknown): unknown {
  return err instanceof Error ? { status: "error", name: err.name, message: err.message } : err;
}

/** The payment-verifier's (or any serving service's) side of the transport, from the config. */
export function createRpcServer(config: Config, service: string, metrics: Registry): StreamRpcServer {
  return new StreamRpcServer({
    redis: config.redis,
    namespace: config.redis.namespace,
    service,
    concurrency: config.rpc.concurrency,
    reclaimIdleMs: config.rpc.reclaimIdleMs,
    metrics,
  });
}
