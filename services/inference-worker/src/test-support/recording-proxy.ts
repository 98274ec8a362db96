/**
 * A pass-through HTTP proxy in front of the fake upstream for tests: records every request (what the provider
 * really received) and adds `x-fake-*` headers to steer the fake. Streams and aborts propagate both ways.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export interface RecordingProxy {
  url: string;
  requests: RecordedRequest[];
  /** `x-fake-*` controls added to every forwarded request (names without the prefix). */
  fake: Record<string, string>;
  reset(): void;
  close(): Promise<void>;
}

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const proxy: RecordingProxy = {
    url: "",
    requests: [],
    fake: {},
    reset() {
      this.requests.length = 0;
      this.fake = {};
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      proxy.requests.push({
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers: req.headers,
        body: body.length ? JSON.parse(body.toString("utf8")) : {},
      });
      const fakeHeaders = Object.fromEntries(Object.entries(proxy.fake).map(([name, value]) => [`x-fake-${name}`, value]));
      const forward = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, ...fakeHeaders, host: upstream.host, "content-length": String(body.length) },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          // The fake dropped the connection mid-response: drop ours too.
          answer.on("close", () => {
            if (!answer.complete) res.destroy();
          });
          answer.on("error", () => res.destroy());
        },
      );
      forward.on("error", () => res.destroy());
      res.on("close", () => {
        if (!res.writableFinished) forward.destroy();
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = proxy.close;
  proxy.close = async () => {
    server.closeAllConnections();
    await close();
  };
  return proxy;
}
