/**
 * Transparent JSON-RPC timing proxy in front of the local chain (its own process, so its CPU is nobody's).
 *
 *   node bench/support/rpc-timing-proxy.mjs <upstream rpc url> <name>...
 *
 * Opens one listener per name (prints `rpc-proxy <name> <url>` for each, then `rpc-proxy ready`). Every
 * request body is forwarded byte for byte over a keep-alive connection and the response streamed back; the
 * proxy records, per listener, [method(s), start, end] in wall-clock ms. `GET /__calls` returns and clears the
 * records of that listener. The chain time it reports includes the proxy's own hop (measured by the bench).
 */
import { Agent, createServer, request } from "node:http";

const [upstreamUrl, ...names] = process.argv.slice(2);
const upstream = new URL(upstreamUrl);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const wall = () => performance.timeOrigin + performance.now();

function methodsOf(body) {
  try {
    const parsed = JSON.parse(body);
    return Array.isArray(parsed) ? parsed.map((m) => m.method).join("+") : parsed.method;
  } catch {
    return "?";
  }
}

for (const name of names) {
  let calls = [];
  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/__calls") {
      const body = JSON.stringify(calls);
      calls = [];
      res.writeHead(200, { "content-type": "application/json" }).end(body);
      return;
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const start = wall();
      const body = Buffer.concat(chunks);
      const out = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          path: upstream.pathname,
          method: "POST",
          agent,
          headers: { "content-type": "application/json", "content-length": body.length },
        },
        (up) => {
          const parts = [];
          up.on("data", (c) => parts.push(c));
          up.on("end", () => {
            const payload = Buffer.concat(parts);
            calls.push([methodsOf(body.toString("utf8")), start, wall()]);
            res
              .writeHead(up.statusCode ?? 502, {
                "content-type": up.headers["content-type"] ?? "application/json",
                "content-length": payload.length,
              })
              .end(payload);
          });
        },
      );
      out.on("error", (err) => {
        res.writeHead(502, { "content-type": "text/plain" }).end(String(err));
      });
      out.end(body);
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  process.stdout.write(`rpc-proxy ${name} http://127.0.0.1:${server.address().port}\n`);
}
process.stdout.write("rpc-proxy ready\n");
process.on("SIGTERM", () => process.exit(0));
