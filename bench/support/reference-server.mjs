/**
 * Baseline servers for the charge benchmark, each in its own process (one core's worth, like one gateway).
 *
 *   node bench/support/reference-server.mjs plain <response.json>
 *     node:http handler answering every request with the same status, headers and JSON body (the gateway's own
 *     402, captured by the bench): the floor of HTTP on this box.
 *
 *   node bench/support/reference-server.mjs mppx <config.json>
 *     mppx 0.11's stock server: `Mppx.create({ methods: [tempo.charge({ currency, recipient, getClient, feePayer })],
 *     secretKey, realm })` served with `Mppx.toNodeListener`, in-memory store, sync broadcast. A paid request is
 *     answered with a static chat completion (no inference).
 *
 * Both print `reference <mode> ready <url>`; `GET /__cpu` answers process.cpuUsage() (µs) for CPU accounting.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";

const [mode, configFile] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configFile, "utf8"));

function cpu(res) {
  const usage = process.cpuUsage();
  res
    .writeHead(200, { "content-type": "application/json" })
    .end(JSON.stringify({ userUs: usage.user, systemUs: usage.system, rss: process.memoryUsage().rss }));
}

let handler;
if (mode === "plain") {
  const body = Buffer.from(config.body);
  const headers = { ...config.headers, "content-length": body.length };
  handler = (req, res) => {
    // Read the request body like a real handler would before answering.
    req.resume();
    req.on("end", () => res.writeHead(config.status, headers).end(body));
  };
} else if (mode === "mppx") {
  const { Mppx, tempo } = await import("mppx/server");
  const { privateKeyToAccount } = await import("viem/accounts");
  const { createTempoClients } = await import("@worldrouter/chain");
  const clients = createTempoClients({ rpcUrl: config.rpcUrl, chainId: config.chainId, feeToken: config.token });
  const mppx = Mppx.create({
    methods: [
      tempo.charge({
        currency: config.token,
        recipient: config.recipient,
        getClient: () => clients.publicClient,
        feePayer: privateKeyToAccount(config.feePayerPrivateKey),
      }),
    ],
    secretKey: config.secretKey,
    realm: config.realm,
  });
  const completion = Buffer.from(config.completion);
  const paid = Mppx.toNodeListener(mppx.charge({ amount: config.amount }));
  handler = async (req, res) => {
    try {
      const result = await paid(req, res);
      if (result.status === 402) return;
      res.setHeader("content-type", "application/json");
      res.setHeader("content-length", completion.length);
      res.end(completion);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(err?.stack ?? err));
    }
  };
} else {
  throw new Error(`unknown mode ${mode}`);
}

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/__cpu") return cpu(res);
  return handler(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => process.stdout.write(`reference ${mode} ready http://127.0.0.1:${server.address().port}\n`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
