import { parseArgs } from "node:util";
import { startFakeUpstream } from "./server.js";

const { values } = parseArgs({ options: { port: { type: "string", default: "0" }, host: { type: "string", default: "127.0.0.1" } } });
const upstream = await startFakeUpstream({ port: Number(values.port), host: values.host });
process.stdout.write(`fake-upstream ready ${upstream.url}\n`);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void upstream.close().then(() => process.exit(0)));
