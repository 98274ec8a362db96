import { randomUUID } from "node:crypto";
import { Logger } from "@nestjs/common";
import { ClientProxy, type ReadPacket, type WritePacket } from "@nestjs/microservices";
import type { Config } from "@worldrouter/config";
import { decodeRpcReply, encodeRpcRequest, type RpcReply, rpcReplyStreamKey, rpcRequestStreamKey } from "@worldrouter/contracts";
import { counter } from "@worldrouter/observability";
import { Redis } from "ioredis";
import type { Counter, Registry } from "prom-client";
import type { Observable } from "rxjs";
import { redisOptions, type RedisSettings } from "./redis.js";
import { processInstanceId, StreamReader, type StreamEntry } from "./stream-reader.js";

/** Replies fetched per XREAD. */
const READ_BATCH = 1000;
/** XREAD BLOCK timeout (close() unblocks the read at once). */
const READ_BLOCK_MS = 5_000;
/** Approximate cap of a request stream: a backlog this deep means no replica is serving; old requests are past their deadline. */
const REQUEST_STREAM_MAX_LENGTH = "100000";

/** No reply within the call's timeout (the server may still run it: a late reply is dropped). */
export class RpcTimeoutError extends Error {
  override readonly name = "RpcTimeoutError";
  constructor(
    readonly pattern: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply to ${pattern} within ${timeoutMs} ms`);
  }
}

/** The client closed while the call waited. */
export class RpcClientClosedError extends Error {
  override readonly name = "RpcClientClosedError";
  constructor(readonly pattern: string) {
    super(`the RPC client closed while ${pattern} waited for its reply`);
  }
}

/** The handler failed; `body` is the error as the server serialised it (Nest's `{ status: "error", message }`). */
export class RpcRemoteError extends Error {
  override readonly name = "RpcRemoteError";
  constructor(
    readonly pattern: string,
    readonly body: unknown,
  ) {
    super(`${pattern} failed on the server: ${(body as { message?: unknown } | null)?.message ?? JSON.stringify(body)}`);
  }
}

export interface StreamRpcClientOptions {
  redis: RedisSettings;
  namespace: string;
  /** The service called: its replicas read `rpcRequestStreamKey(namespace, service)`. */
  service: string;
  /** Timeout of calls made through Nest's `send()`; `call()` takes one per call. */
  defaultTimeoutMs: number;
  metrics: Registry;
}

interface PendingCall {
  pattern: string;
  timeoutMs: number;
  callback: (packet: WritePacket) => void;
  timer: NodeJS.Timeout;
}

/**
 * Client side of the request/reply transport on Redis Streams (wire format: `@worldrouter/contracts` rpc-streams):
 * a call is one XADD to the serving service's request stream, carrying a correlation id, this process's reply
 * stream and the deadline; the reply arrives on this process's own reply stream, read by ONE tailing reader for
 * every call in flight. Every call has an explicit timeout (`RpcTimeoutError`; a late reply is dropped); close()
 * fails the calls still waiting (`RpcClientClosedError`). Nest events (`emit`) are not carried.
 */
export class StreamRpcClient extends ClientProxy {
  /** This process; its reply stream is `rpcReplyStreamKey(namespace, instanceId)`. */
  readonly instanceId = processInstanceId();
  private readonly logger = new Logger(StreamRpcClient.name);
  private readonly requestStream: string;
  private readonly replyStream: string;
  private readonly pending = new Map<string, PendingCall>();
  private connection: Promise<{ commands: Redis; reader: StreamReader }> | undefined;
  private commands: Redis | undefined;
  private readonly calls: Counter<"pattern" | "outcome">;

  constructor(private readonly options: StreamRpcClientOptions) {
    super();
    this.requestStream = rpcRequestStreamKey(options.namespace, options.service);
    this.replyStream = rpcReplyStreamKey(options.namespace, this.instanceId);
    this.calls = counter(options.metrics, "wr_rpc_calls_total", "RPC calls made, by pattern and outcome", ["pattern", "outcome"]);
  }

  connect(): Promise<void> {
    this.connection ??= this.open();
    return this.connection.then(() => undefined);
  }

  private async open(): Promise<{ commands: Redis; reader: StreamReader }> {
    const commands = new Redis({ ...redisOptions(this.options.redis), lazyConnect: true });
    const onError = (err: Error) => this.logger.warn(`rpc client redis error: ${err.message}`);
    commands.on("error", onError);
    // This process's own stream, read from its start: every entry on it answers a call of this process.
    const reader = new StreamReader({
      redis: this.options.redis,
      commands,
      stream: this.replyStream,
      startId: "0-0",
      capacity: () => READ_BATCH,
      blockMs: READ_BLOCK_MS,
      onEntries: (entries) => this.dispatch(entries),
      onError,
    });
    await commands.connect();
    await reader.start();
    this.commands = commands;
    return { commands, reader };
  }

  /** Fails the calls still waiting, stops the reader, deletes this process's reply stream. */
  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    this.commands = undefined;
    for (const [id, call] of this.pending) this.settle(id, { err: new RpcClientClosedError(call.pattern) }, "closed");
    const opened = await connection?.catch(() => undefined);
    if (!opened) return;
    const { commands, reader } = opened;
    await reader.stop();
    await commands.del(this.replyStream).catch(() => undefined);
    await commands.quit().catch(() => undefined);
  }

  /** One request/reply with its own timeout: resolves with the handler's answer, rejects with an Rpc*Error. */
  async call(pattern: string, data: unknown, timeoutMs = this.options.defaultTimeoutMs): Promise<unknown> {
    await this.connect();
    return new Promise((resolve, reject) => {
      this.request(
        this.createPacket(pattern, data),
        ({ err, response }) => (err === undefined ? resolve(response) : reject(err)),
        timeoutMs,
      );
    });
  }

  unwrap<T>(): T {
    if (!this.commands) throw new Error("the RPC client is not connected");
    return this.commands as T;
  }

  override emit<TResult = never>(pattern: unknown, _data?: unknown): Observable<TResult> {
    throw new Error(`the Redis Streams RPC transport carries requests only; emit(${String(pattern)}) is not supported`);
  }

  protected dispatchEvent<T = never>(packet: ReadPacket): Promise<T> {
    return Promise.reject(new Error(`the Redis Streams RPC transport carries requests only; event ${String(packet.pattern)} not sent`));
  }

  /** Nest's `send()` path, with the default timeout. */
  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    return this.request(packet, callback, this.options.defaultTimeoutMs);
  }

  private request(packet: ReadPacket, callback: (packet: WritePacket) => void, timeoutMs: number): () => void {
    const id = randomUUID();
    const pattern = this.normalizePattern(packet.pattern);
    const commands = this.commands;
    if (!commands) {
      callback({ err: new RpcClientClosedError(pattern) });
      return () => undefined;
    }
    const timer = setTimeout(() => this.settle(id, { err: new RpcTimeoutError(pattern, timeoutMs) }, "timeout"), timeoutMs);
    this.pending.set(id, { pattern, timeoutMs, callback, timer });
    const deadline = Date.now() + timeoutMs;
    const fields = encodeRpcRequest({ id, pattern, replyTo: this.replyStream, deadline, payload: packet.data });
    commands
      .xadd(this.requestStream, "MAXLEN", "~", REQUEST_STREAM_MAX_LENGTH, "*", ...fields)
      .catch((err: Error) => this.settle(id, { err }, "unsent"));
    // Unsubscribing (e.g. an rxjs timeout upstream) forgets the call: its reply, if any, is dropped.
    return () => this.forget(id);
  }

  private dispatch(entries: StreamEntry[]): void {
    for (const { fields } of entries) {
      const reply = decodeRpcReply(fields);
      if (!reply) {
        this.logger.warn("malformed rpc reply entry dropped");
        continue;
      }
      // Unknown ids: calls that timed out or were abandoned here already.
      const call = this.pending.get(reply.id);
      if (call) this.settle(reply.id, toPacket(call, reply), reply.outcome);
    }
  }

  private settle(id: string, packet: WritePacket, outcome: string): void {
    const call = this.forget(id);
    if (!call) return;
    this.calls.inc({ pattern: call.pattern, outcome });
    call.callback(packet);
  }

  private forget(id: string): PendingCall | undefined {
    const call = this.pending.get(id);
    if (!call) return undefined;
    clearTimeout(call.timer);
    this.pending.delete(id);
    return call;
  }
}

function toPacket(call: PendingCall, reply: RpcReply): WritePacket {
  switch (reply.outcome) {
    case "ok":
      return { response: reply.body, isDisposed: true };
    case "error":
      return { err: new RpcRemoteError(call.pattern, reply.body) };
    case "expired":
      // The server skipped it: by its clock the deadline had passed (the call's own timer fires about then too).
      return { err: new RpcTimeoutError(call.pattern, call.timeoutMs) };
  }
}

/** A client of a serving service's RPC, from the config (its default timeout is RPC_TIMEOUT_MS). */
export function createRpcClient(config: Config, service: string, metrics: Registry): StreamRpcClient {
  return new StreamRpcClient({
    redis: config.redis,
    namespace: config.redis.namespace,
    service,
    defaultTimeoutMs: config.gateway.rpcTimeoutMs,
    metrics,
  });
}
