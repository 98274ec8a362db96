// `npm run build` step: the ops dashboard's static files and uPlot's browser build (from node_modules) go next to the
// compiled controller, so the running service serves them with no build step and no network at runtime.
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const source = join(root, "src/ops/dashboard");
const target = join(root, "dist/ops/dashboard");
const uplot = join(dirname(createRequire(join(root, "package.json")).resolve("uplot")), "");
mkdirSync(target, { recursive: true });
for (const file of readdirSync(source)) copyFileSync(join(source, file), join(target, file));
for (const file of ["uPlot.iife.min.js", "uPlot.min.css"]) copyFileSync(join(uplot, file), join(target, file));
