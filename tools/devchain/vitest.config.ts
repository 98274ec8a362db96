import { fileURLToPath } from "node:url";
import { projectConfig } from "../../vitest.shared.js";

const config = projectConfig(import.meta.url);
// mppx/tempo and mppx/client import eventsource-parser, which exports raw TypeScript under the "source" condition
// that the shared config also hands to Node (--conditions source), and Node cannot load .ts. So vite handles mppx
// and points eventsource-parser at its built ESM entry (resolved here, where Node runs without that condition).
config.resolve = {
  ...config.resolve,
  alias: [{ find: /^eventsource-parser$/, replacement: fileURLToPath(import.meta.resolve("eventsource-parser")) }],
};
config.test = { ...config.test, server: { deps: { inline: ["mppx"] } } };

export default config;
