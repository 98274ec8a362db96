import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ENV, renderEnvTable } from "./index.js";

const repo = new URL("../../../", import.meta.url);

describe("configuration docs cannot drift", () => {
  it("README's configuration table is the one generated from the env schema", () => {
    const readme = readFileSync(new URL("README.md", repo), "utf8");
    const table = readme.split("<!-- env-table:start -->")[1]?.split("<!-- env-table:end -->")[0]?.trim();
    expect(table, "run `npm run docs:config` to regenerate it").toBe(renderEnvTable());
  });

  it("docker-compose.yml only sets variables the config knows", () => {
    const compose = parse(readFileSync(new URL("docker-compose.yml", repo), "utf8"), { merge: true }) as {
      services: Record<string, { environment?: Record<string, unknown> }>;
    };
    const known = new Set([...Object.keys(ENV), "POSTGRES_PASSWORD", "POSTGRES_DB"]);
    const used = Object.values(compose.services).flatMap((service) => Object.keys(service.environment ?? {}));
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((name) => !known.has(name))).toEqual([]);
  });
});
