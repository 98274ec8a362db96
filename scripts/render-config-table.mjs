#!/usr/bin/env node
// Rewrites README.md's configuration table from libs/config's env schema (run after changing an env var;
// libs/config's docs test fails while they differ). Needs a build: `npm run build` first.
import { readFileSync, writeFileSync } from "node:fs";
import { renderEnvTable } from "@worldrouter/config";

const path = new URL("../README.md", import.meta.url);
const readme = readFileSync(path, "utf8");
const [head, rest] = readme.split("<!-- env-table:start -->");
const [, tail] = rest.split("<!-- env-table:end -->");
writeFileSync(path, `${head}<!-- env-table:start -->\n${renderEnvTable()}\n<!-- env-table:end -->${tail}`);
console.log("README.md configuration table updated");
