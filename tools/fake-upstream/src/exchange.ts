/** Sending a response with the fake's timing: time to first token, per-event latency, injected disconnects. */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { FakeControls } from "./controls.js";
import type { StatsRecorder } from "./stats.js";

const SSE_HEADERS: OutgoingHttpHeaders = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  connection: "keep-alive",
};

/** One request/response pair and what has happened to it. */
export class Exchange {
  private timer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    private readonly stats: StatsRecorder,
  ) {
    stats.opened();
    res.on("close", () => {
      clearTimeout(this.timer);
      if (!this.done) {
        this.done = true;
        stats.clientAborted();
      }
    });
  }

  /** Client went away or the response is over: stop producing. */
  get finished(): boolean {
    return this.done;
  }

  json(status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
    this.end(status, { "content-type": "application/json", ...headers }, JSON.stringify(body));
  }

  /** A JSON response after the time the completion would take to generate. */
  delayedJson(controls: FakeControls, chunks: number, body: () => unknown, headers: OutgoingHttpHeaders = {}): void {
    const delay = controls.ttftMs + controls.latencyMs * chunks;
    const send = () => (controls.disconnectAfter === null ? this.json(200, body(), headers) : this.disconnect());
    if (delay === 0) send();
    else this.timer = setTimeout(send, delay);
  }

  /** SSE events, the first after ttftMs, then one every latencyMs; cut by disconnectAfter. */
  stream(controls: FakeControls, events: readonly string[], headers: OutgoingHttpHeaders = {}): void {
    const { ttftMs, latencyMs, disconnectAfter } = controls;
    const limit = Math.min(events.length, disconnectAfter ?? events.length);
    this.res.writeHead(200, { ...SSE_HEADERS, ...headers });
    let sent = 0;
    const finish = () => {
      if (limit < events.length) this.disconnect();
      else this.end();
    };
    const writeRest = () => {
      if (this.done) return;
      const rest = sent === 0 && limit === events.length ? events : events.slice(sent, limit);
      sent = limit;
      if (rest.length > 0) this.res.write(rest.join(""));
      finish();
    };
    const step = () => {
      if (this.done) return;
      if (sent >= limit) return finish();
      this.res.write(events[sent++]!);
      if (latencyMs === 0) return writeRest();
      this.timer = setTimeout(step, latencyMs);
    };
    if (ttftMs === 0 && latencyMs === 0) writeRest();
    else {
      this.res.flushHeaders();
      this.timer = setTimeout(step, ttftMs);
    }
  }

  /** Drops the connection without a (complete) response, as a crashed upstream or broken network would. */
  disconnect(): void {
    if (this.done) return;
    this.done = true;
    this.stats.disconnectInjected();
    const socket = this.req.socket;
    clearTimeout(this.timer);
    // Mid-response: flush what was written, then close, so the client reads K events and then a broken body. The
    // response's writes reach the socket on the next tick (Node 22+ corks them), so the close waits for that.
    if (this.res.headersSent) setImmediate(() => socket.end(() => socket.destroy()));
    else socket.destroy();
  }

  private end(status?: number, headers?: OutgoingHttpHeaders, body?: string): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    if (status !== undefined) this.res.writeHead(status, headers);
    this.res.end(body);
    this.stats.completed(status ?? 200);
  }
}
