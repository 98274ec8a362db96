import { spawnSync } from "node:child_process";
import { ConfigError } from "@worldrouter/config";
import { serviceEntry, SERVICES, startSystem } from "@worldrouter/dev-runner";
import { describe, expect, it } from "vitest";

describe("bad configuration", () => {
  it.each(SERVICES)("%s exits non-zero naming every bad variable, before starting anything", (service) => {
    const result = spawnSync(process.execPath, [serviceEntry(service)], {
      env: {
        ...process.env,
        PORT: "eighty",
        REDIS_URL: "not-a-url",
        PRICE_OVERHEAD: "lots",
        WORLD_FILE: "/nonexistent",
        PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
      },
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(result.status).toBe(78);
    expect(result.stderr).toMatch(new RegExp(`^${service}: invalid configuration:`));
    for (const name of ["PORT", "REDIS_URL", "PRICE_OVERHEAD"]) expect(result.stderr).toContain(`- ${name}:`);
    expect(result.stdout).toBe("");
  });

  it("npm start's orchestrator refuses bad config before starting the chain or any service", async () => {
    const lines: string[] = [];
    const started = startSystem({
      env: { ...process.env, MIN_CHARGE: "-1", CHALLENGE_TTL_SECONDS: "1" },
      worldFile: "/nonexistent/world.json",
      onLine: (_s, line) => lines.push(line),
    });
    const error = await started.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.split(":")[0]).sort()).toEqual(["CHALLENGE_TTL_SECONDS", "MIN_CHARGE"]);
    expect(lines).toEqual([]);
  });
});
