/**
 * Passive observer of one paid request's hand-offs, from outside the services (read-only: non-consuming
 * XREADs; nothing is stubbed or changed):
 *
 *   verifyPublished  gateway → verifier RPC request seen on `<ns>:rpc:requests:payment-verifier`
 *   verifyReplied    verifier's answer seen on the gateway's RPC reply stream `<ns>:rpc:replies:<instance>`
 *   jobAdded         the inference job's entry on the dispatch stream (`<ns>:inference:jobs`)
 *   replyWritten     the worker's `completion` (or first `chunk`) entry on the gateway's reply stream
 *
 * Each time is this process's wall clock when the entry arrived. Blocked XREADs are served by Redis in the same
 * command execution as the write, so the lag to the real event is the delivery + parse
 * time in this process (tens of µs when it is idle); it cancels out in spans between two observed events.
 */
import { Redis } from "ioredis";
import { wallMs } from "./common.mjs";

export class PaymentPathObserver {
  constructor(redisUrl, namespace) {
    this.namespace = namespace;
    this.reader = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: null });
    this.rpcIds = new Map(); // rpc call id → request id
    this.byRequest = new Map(); // request id → times
    this.streams = new Map(); // key → last id
    this.stopping = false;
  }

  at(requestId) {
    let times = this.byRequest.get(requestId);
    if (!times) this.byRequest.set(requestId, (times = {}));
    return times;
  }

  async start() {
    await this.reader.connect();
    this.streams.set(`${this.namespace}:rpc:requests:payment-verifier`, "$");
    this.streams.set(`${this.namespace}:inference:jobs`, "$");
    // A second connection can interrupt the reader's BLOCK (to watch more keys, or to stop).
    this.readerId = await this.reader.client("ID");
    this.control = new Redis(this.reader.options);
    this.loop = this.read();
  }

  async read() {
    while (!this.stopping) {
      const keys = [...this.streams.keys()];
      let result;
      try {
        result = await this.reader.xread("COUNT", 1000, "BLOCK", 0, "STREAMS", ...keys, ...keys.map((k) => this.streams.get(k)));
      } catch (err) {
        if (this.stopping) return;
        if (/UNBLOCKED/.test(String(err))) continue;
        throw err;
      }
      const now = wallMs();
      for (const [key, entries] of result ?? []) {
        for (const [id, fields] of entries) {
          this.streams.set(key, id);
          const f = {};
          for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
          if (key.endsWith(":rpc:requests:payment-verifier")) {
            const requestId = f.payload ? JSON.parse(f.payload).requestId : undefined;
            if (requestId) {
              this.rpcIds.set(f.id, requestId);
              this.at(requestId).verifyPublished ??= now;
            }
          } else if (key.includes(":rpc:replies:")) {
            const requestId = this.rpcIds.get(f.id);
            if (requestId) {
              this.rpcIds.delete(f.id);
              this.at(requestId).verifyReplied ??= now;
            }
          } else if (key.endsWith(":inference:jobs")) {
            const requestId = f.job ? JSON.parse(f.job).requestId : undefined;
            if (requestId) this.at(requestId).jobAdded ??= now;
          } else if (f.requestId && (f.type === "completion" || f.type === "chunk" || f.type === "error")) {
            this.at(f.requestId).replyWritten ??= now;
          }
        }
      }
    }
  }

  /** Interrupts the blocked XREAD (to add keys or stop). */
  async unblock() {
    if (this.readerId !== undefined) await this.control.client("UNBLOCK", this.readerId, "ERROR").catch(() => undefined);
  }

  /**
   * Watches the gateway's reply streams too, inference and RPC (their names carry a random instance id, so they
   * are found by scan; an RPC reply stream exists once the gateway got its first reply).
   */
  async addReplyStreams() {
    for (const pattern of [`${this.namespace}:replies:*`, `${this.namespace}:rpc:replies:*`]) {
      let cursor = "0";
      do {
        const [next, keys] = await this.control.scan(cursor, "MATCH", pattern, "COUNT", 1000);
        for (const key of keys) if (!this.streams.has(key)) this.streams.set(key, "$");
        cursor = next;
      } while (cursor !== "0");
    }
    await this.unblock();
  }

  times(requestId) {
    return this.byRequest.get(requestId);
  }

  clear() {
    this.byRequest.clear();
  }

  async stop() {
    this.stopping = true;
    await this.unblock();
    await this.loop?.catch(() => undefined);
    this.reader.disconnect();
    this.control?.disconnect();
  }
}
