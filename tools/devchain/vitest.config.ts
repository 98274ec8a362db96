import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { projectConfig } from "../../vitest.shared.js";

const config = projectConfig(import.meta.url);

// mppx/tempo and mppx/client import eventsource-parser, which exports raw TypeScript under the "source" condition
// that the shared config also hands to Node (--conditions source), and Node cannot load .ts. So vite loads mppx
// itself and points eventsource-parser at its built ESM entry (resolved here, where Node runs without "source").
config.resolve = {
  ...config.resolve,
  alias: [{ find: /^eventsource-parser$/, replacement: fileURLToPath(import.meta.resolve("eventsource-parser")) }],
};
config.test = { ...config.test, server: { deps: { inline: ["mppx"] } } };
config.plugins = [
  ...(config.plugins ?? []),
  {
    // mppx's dist points at .js.map files it does not ship; vite would print a warning for each one.
    name: "load-mppx-without-missing-source-maps",
    async load(id: string) {
      if (!id.includes("/node_modules/mppx/dist/") || !id.endsWith(".js")) return null;
      return (await readFile(id, "utf8")).replace(/^\/\/# sourceMappingURL=.*$/m, "");
    },
  },
];

export default config;
