import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, renderEnvTable, shutdownTimeoutMs, TEMPO_MAINNET } from "./index.js";

const payee = "0x00000000000000000000000000000000000000aa";
const noWorld = { WORLD_FILE: "/nonexistent/world.json" };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("starts on local defaults with only a payee", () => {
    const config = loadConfig({ ...noWorld, PAYEE_ADDRESS: payee.toUpperCase().replace("0X", "0x") });
    expect(config.gateway).toMatchObject({ host: "127.0.0.1", port: 8080, publicUrl: "http://127.0.0.1:8080", realm: "127.0.0.1" });
    expect(config.chain).toMatchObject({ chainId: 4217, token: TEMPO_MAINNET.usdce, escrow: TEMPO_MAINNET.channelEscrow, payee });
    expect(config.pricing).toEqual({ overhead: "1.5", minimumCharge: 2500n, defaultMaxTokens: 4096 });
    expect(config.redis.namespace).toBe("wr");
    expect(config.chain.rpcTimeoutMs).toBe(15_000);
    expect(config.sponsor).toEqual({
      maxInFlight: 128,
      maxGas: 2_000_000n,
      maxFeePerGas: 100_000_000_000n,
      maxTotalFee: 50_000_000_000_000_000n,
      budget: { windowSeconds: 3600, perPayer: 100_000_000n, global: 10_000_000_000n },
    });
  });

  it("the challenge realm is the public host name without the port (what mppx validates against the request host)", () => {
    const at = (PUBLIC_URL: string) => loadConfig({ ...noWorld, PAYEE_ADDRESS: payee, PUBLIC_URL }).gateway.realm;
    expect(at("https://api.worldrouter.dev:8443/base")).toBe("api.worldrouter.dev");
    expect(at("http://127.0.0.1:8080")).toBe("127.0.0.1");
    expect(at("https://API.Example.com")).toBe("api.example.com");
  });

  it("CHARGE_DEFAULT_MAX_TOKENS is a positive integer", () => {
    expect(loadConfig({ ...noWorld, PAYEE_ADDRESS: payee, CHARGE_DEFAULT_MAX_TOKENS: "1000" }).pricing.defaultMaxTokens).toBe(1000);
    for (const bad of ["0", "-5", "1.5", "lots"])
      expect(problemsOf({ ...noWorld, PAYEE_ADDRESS: payee, CHARGE_DEFAULT_MAX_TOKENS: bad }).map((p) => p.split(":")[0])).toEqual([
        "CHARGE_DEFAULT_MAX_TOKENS",
      ]);
  });

  it("sponsor limits are positive integers, read as bigint", () => {
    expect(
      loadConfig({ ...noWorld, PAYEE_ADDRESS: payee, SPONSOR_MAX_TOTAL_FEE: "123456789012345678901234567890" }).sponsor.maxTotalFee,
    ).toBe(123456789012345678901234567890n);
    expect(
      problemsOf({ ...noWorld, PAYEE_ADDRESS: payee, SPONSOR_MAX_GAS: "0", SPONSOR_MAX_FEE_PER_GAS: "1.5", SPONSOR_MAX_IN_FLIGHT: "0" })
        .map((p) => p.split(":")[0])
        .sort(),
    ).toEqual(["SPONSOR_MAX_FEE_PER_GAS", "SPONSOR_MAX_GAS", "SPONSOR_MAX_IN_FLIGHT"]);
    expect(
      loadConfig({ ...noWorld, PAYEE_ADDRESS: payee, SPONSOR_BUDGET_PER_PAYER: "5000", SPONSOR_BUDGET_WINDOW_SECONDS: "60" }).sponsor
        .budget,
    ).toEqual({ windowSeconds: 60, perPayer: 5000n, global: 10_000_000_000n });
  });

  it("a job's deadline comes before its payment can be swept: RPC_TIMEOUT_MS + INFERENCE_REPLY_TIMEOUT_MS below ORPHANED_PAYMENT_MINUTES", () => {
    const base = { ...noWorld, PAYEE_ADDRESS: payee };
    expect(loadConfig(base).inference.replyTimeoutMs).toBe(60_000);
    expect(
      loadConfig({ ...base, ORPHANED_PAYMENT_MINUTES: "1", RPC_TIMEOUT_MS: "20000", INFERENCE_REPLY_TIMEOUT_MS: "39999" }).inference
        .replyTimeoutMs,
    ).toBe(39_999);
    const tooLate: Record<string, string>[] = [
      { ORPHANED_PAYMENT_MINUTES: "1", RPC_TIMEOUT_MS: "20000", INFERENCE_REPLY_TIMEOUT_MS: "40000" },
      { ORPHANED_PAYMENT_MINUTES: "2" }, // 60 s + 60 s of the defaults is not below 2 minutes
      { INFERENCE_REPLY_TIMEOUT_MS: "900000" },
    ];
    for (const env of tooLate) {
      const problems = problemsOf({ ...base, ...env });
      expect(problems.map((p) => p.split(":")[0])).toEqual(["INFERENCE_REPLY_TIMEOUT_MS"]);
      expect(problems[0]).toContain("ORPHANED_PAYMENT_MINUTES");
    }
  });

  it("each service's shutdown limit is its own drain plus SHUTDOWN_TIMEOUT_MS to close", () => {
    const config = loadConfig({ ...noWorld, PAYEE_ADDRESS: payee });
    expect(config.drain).toEqual({ gatewayMs: 660_000, inferenceWorkerMs: 600_000 });
    expect(shutdownTimeoutMs(config, "inference-worker")).toBe(615_000);
    expect(shutdownTimeoutMs(config, "gateway")).toBe(675_000);
    expect(shutdownTimeoutMs(config, "payment-verifier")).toBe(75_000); // a verification ends by its caller's RPC deadline
    expect(shutdownTimeoutMs(config, "settlement")).toBe(15_000);
    const short = loadConfig({
      ...noWorld,
      PAYEE_ADDRESS: payee,
      WORKER_DRAIN_MS: "2000",
      GATEWAY_DRAIN_MS: "3000",
      SHUTDOWN_TIMEOUT_MS: "1000",
    });
    expect(shutdownTimeoutMs(short, "inference-worker")).toBe(3000);
    expect(shutdownTimeoutMs(short, "gateway")).toBe(4000);
  });

  it("names every bad or missing variable in one error, hiding secret values", () => {
    const problems = problemsOf({
      ...noWorld,
      PORT: "eighty",
      DATABASE_URL: "not a url",
      PRICE_OVERHEAD: "1,5",
      MPP_SECRET_KEY: "short-secret",
      FEE_PAYER_PRIVATE_KEY: "0x1234",
    });
    const names = problems.map((p) => p.split(":")[0]).sort();
    expect(names).toEqual(["DATABASE_URL", "FEE_PAYER_PRIVATE_KEY", "MPP_SECRET_KEY", "PAYEE_ADDRESS", "PORT", "PRICE_OVERHEAD"]);
    expect(problems.join("\n")).not.toContain("short-secret");
    expect(problems.join("\n")).not.toContain("0x1234");
    expect(problems.find((p) => p.startsWith("PORT"))).toContain('"eighty"');
  });

  describe("production refuses what would lose money or keys", () => {
    // Two distinct keys and the payee address of the first.
    const payeeKey = `0x${"11".repeat(32)}`;
    const payeeOfKey = "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a";
    const feePayerKey = `0x${"22".repeat(32)}`;
    const production = {
      ...noWorld,
      NODE_ENV: "production",
      MPP_SECRET_KEY: "a-real-production-secret-of-at-least-32-bytes",
      PAYEE_ADDRESS: payeeOfKey,
      PAYEE_PRIVATE_KEY: payeeKey,
      FEE_PAYER_PRIVATE_KEY: feePayerKey,
      OPS_TOKEN: "a-production-ops-token-of-some-length",
      OPS_READER_PASSWORD: "a-reader-password",
    };

    it("a missing or development MPP secret", () => {
      const { MPP_SECRET_KEY: _secret, ...secretless } = production;
      expect(problemsOf(secretless)).toEqual(["MPP_SECRET_KEY: required in production"]);
      expect(problemsOf({ ...production, MPP_SECRET_KEY: "worldrouter-local-development-secret-do-not-use-in-production" })).toEqual([
        "MPP_SECRET_KEY: the development secret is refused in production",
      ]);
    });

    it("starts on a complete production setting", () => {
      expect(loadConfig(production).chain).toMatchObject({ payee: payeeOfKey, payeePrivateKey: payeeKey, feePayerPrivateKey: feePayerKey });
    });

    it("an overhead below 1 (1 itself passes)", () => {
      expect(problemsOf({ ...production, PRICE_OVERHEAD: "0.99" })).toEqual([
        'PRICE_OVERHEAD: below 1 is refused in production (every charge would be below its cost) — got "0.99"',
      ]);
      expect(problemsOf({ ...production, PRICE_OVERHEAD: "0" }).map((p) => p.split(":")[0])).toEqual(["PRICE_OVERHEAD"]);
      expect(loadConfig({ ...production, PRICE_OVERHEAD: "1" }).pricing.overhead).toBe("1");
      expect(loadConfig({ ...noWorld, PAYEE_ADDRESS: payee, PRICE_OVERHEAD: "0.5" }).pricing.overhead).toBe("0.5"); // development may
    });

    it("a missing payee key (refunds, channel settlement) or fee-payer key (sponsored charges)", () => {
      const { PAYEE_PRIVATE_KEY: _payeeKey, FEE_PAYER_PRIVATE_KEY: _feePayerKey, ...keyless } = production;
      expect(problemsOf(keyless)).toEqual([
        "PAYEE_PRIVATE_KEY: required in production (refunds and channel settlement are signed by the payee)",
        "FEE_PAYER_PRIVATE_KEY: required in production (the sponsor co-signs every charge transaction)",
      ]);
      expect(problemsOf({ ...production, PAYEE_PRIVATE_KEY: "" }).map((p) => p.split(":")[0])).toEqual(["PAYEE_PRIVATE_KEY"]);
    });

    it("a payee key that is not PAYEE_ADDRESS's, without echoing the key", () => {
      const problems = problemsOf({ ...production, PAYEE_ADDRESS: payee });
      expect(problems).toEqual([`PAYEE_PRIVATE_KEY: is the key of ${payeeOfKey}, not of PAYEE_ADDRESS ${payee}`]);
      expect(problems.join("\n")).not.toContain("1111");
    });

    it("a fee payer that is the payee", () => {
      expect(problemsOf({ ...production, FEE_PAYER_PRIVATE_KEY: payeeKey })).toEqual([
        "FEE_PAYER_PRIVATE_KEY: the fee payer must not be the payee (keep the gas budget and the revenue apart)",
      ]);
    });

    it("every refusal at once, in one error", () => {
      const problems = problemsOf({
        ...noWorld,
        NODE_ENV: "production",
        PAYEE_ADDRESS: payee,
        PRICE_OVERHEAD: "0.5",
        OPS_TOKEN: "a-production-ops-token-of-some-length",
        OPS_READER_PASSWORD: "a-reader-password",
      });
      expect(problems.map((p) => p.split(":")[0])).toEqual([
        "MPP_SECRET_KEY",
        "PRICE_OVERHEAD",
        "PAYEE_PRIVATE_KEY",
        "FEE_PAYER_PRIVATE_KEY",
      ]);
    });
  });

  it("NODE_ENV is development, test or production, nothing else", () => {
    for (const good of ["development", "test", "production"] as const)
      expect(() => loadConfig({ ...noWorld, PAYEE_ADDRESS: payee, NODE_ENV: good })).not.toThrow(/NODE_ENV/);
    for (const bad of ["staging", "prod", "Production", "dev"])
      expect(problemsOf({ ...noWorld, PAYEE_ADDRESS: payee, NODE_ENV: bad }).map((p) => p.split(":")[0])).toEqual(["NODE_ENV"]);
  });

  it("rate limits and trusted proxies: positive budgets, valid addresses or CIDR ranges", () => {
    const base = { ...noWorld, PAYEE_ADDRESS: payee };
    expect(loadConfig(base).rateLimits).toEqual({ windowSeconds: 60, unpaid: 120, paid: 120, session: 120, trustedProxies: [] });
    expect(loadConfig({ ...base, TRUSTED_PROXIES: " 10.0.0.0/8, 127.0.0.1 ,fd00::/8" }).rateLimits.trustedProxies).toEqual([
      "10.0.0.0/8",
      "127.0.0.1",
      "fd00::/8",
    ]);
    for (const bad of ["10.0.0.0/33", "localhost", "10.0.0.1, nope"])
      expect(problemsOf({ ...base, TRUSTED_PROXIES: bad }).map((p) => p.split(":")[0])).toEqual(["TRUSTED_PROXIES"]);
    expect(problemsOf({ ...base, RATE_LIMIT_UNPAID: "0", RATE_LIMIT_WINDOW_SECONDS: "x" }).map((p) => p.split(":")[0])).toEqual([
      "RATE_LIMIT_WINDOW_SECONDS",
      "RATE_LIMIT_UNPAID",
    ]);
  });

  it("Postgres, Redis and chain calls have timeouts, configurable", () => {
    const config = loadConfig({ ...noWorld, PAYEE_ADDRESS: payee });
    expect(config.database).toEqual({ connectTimeoutMs: 5000, statementTimeoutMs: 30_000 });
    expect(config.redis).toMatchObject({ connectTimeoutMs: 5000, commandTimeoutMs: 5000 });
    expect(config.chain.rpcTimeoutMs).toBe(15_000);
    const tuned = loadConfig({
      ...noWorld,
      PAYEE_ADDRESS: payee,
      DATABASE_STATEMENT_TIMEOUT_MS: "2500",
      REDIS_COMMAND_TIMEOUT_MS: "750",
    });
    expect(tuned.database.statementTimeoutMs).toBe(2500);
    expect(tuned.redis.commandTimeoutMs).toBe(750);
    expect(problemsOf({ ...noWorld, PAYEE_ADDRESS: payee, REDIS_COMMAND_TIMEOUT_MS: "0" }).map((p) => p.split(":")[0])).toEqual([
      "REDIS_COMMAND_TIMEOUT_MS",
    ]);
  });

  it("requires the ops token and reader password in production, refusing the development token", () => {
    const production = {
      ...noWorld,
      NODE_ENV: "production",
      MPP_SECRET_KEY: "a-production-secret-of-at-least-thirty-two-bytes",
      PAYEE_ADDRESS: "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a",
      PAYEE_PRIVATE_KEY: `0x${"11".repeat(32)}`,
      FEE_PAYER_PRIVATE_KEY: `0x${"22".repeat(32)}`,
    };
    expect(problemsOf(production)).toEqual(["OPS_TOKEN: required in production", "OPS_READER_PASSWORD: required in production"]);
    expect(problemsOf({ ...production, OPS_TOKEN: "worldrouter-local-ops-token", OPS_READER_PASSWORD: "a-reader-password" })).toEqual([
      "OPS_TOKEN: the development token is refused in production",
    ]);
    const config = loadConfig({
      ...production,
      OPS_TOKEN: "t".repeat(24),
      OPS_READER_PASSWORD: "p@ss word/1234",
      DATABASE_URL: "postgresql://app:x@db:5432/wr",
    });
    expect(config.ops.readerDatabaseUrl).toBe("postgresql://worldrouter_ops_reader:p%40ss%20word%2F1234@db:5432/wr");
    expect(problemsOf({ ...noWorld, PAYEE_ADDRESS: payee, OPS_TOKEN: "short" })).toEqual([
      "OPS_TOKEN: must be at least 24 characters — got (value hidden)",
    ]);
  });

  it("takes chain, payee and fake upstream from the local world file, env vars winning", () => {
    const dir = mkdtempSync(join(tmpdir(), "wr-config-"));
    const key = `0x${"11".repeat(32)}`;
    const world = {
      rpcUrl: "http://127.0.0.1:9545",
      chainId: 4217,
      token: { address: "0x20C0000000000000000000000000000000000001", decimals: 6, symbol: "USDC.e", name: "USDC.e" },
      escrow: "0x4d50500000000000000000000000000000000000",
      feePayer: { address: "0x00000000000000000000000000000000000000f1", privateKey: key },
      payee: { address: "0x00000000000000000000000000000000000000f2", privateKey: key },
      wallets: [{ address: "0x00000000000000000000000000000000000000f3", privateKey: key, balance: "1000000" }],
      upstreamUrl: "http://127.0.0.1:9000",
    };
    writeFileSync(join(dir, "world.json"), JSON.stringify(world));
    const config = loadConfig({ WORLD_FILE: "world.json", CHAIN_ID: "31337" }, dir);
    expect(config.chain).toMatchObject({
      rpcUrl: world.rpcUrl,
      chainId: 31337,
      token: "0x20c0000000000000000000000000000000000001",
      payee: "0x00000000000000000000000000000000000000f2",
      feePayerPrivateKey: key,
    });
    expect(config.upstream.openai.baseUrl).toBe("http://127.0.0.1:9000/v1");
    expect(config.upstream.anthropic.baseUrl).toBe("http://127.0.0.1:9000");
    expect(loadConfig({ WORLD_FILE: "world.json", OPENAI_API_KEY: "sk-test" }, dir).upstream.openai.baseUrl).toBeUndefined();

    writeFileSync(join(dir, "broken.json"), JSON.stringify({ ...world, chainId: "x" }));
    expect(problemsOf({ WORLD_FILE: join(dir, "broken.json") })[0]).toMatch(/^WORLD_FILE: invalid world file .*chainId/s);
  });

  it("renders a documentation table with every variable", () => {
    const table = renderEnvTable();
    expect(table).toContain("| `MPP_SECRET_KEY` | dev-only value |");
    expect(table).not.toContain("worldrouter-local-development-secret");
    expect(table).toContain("| `OPS_TOKEN` | dev-only value |");
    expect(table).not.toContain("worldrouter-local-ops-token");
  });
});

describe("MODEL_FALLBACKS", () => {
  it("parses model=fallback|fallback rules and rejects malformed ones", () => {
    const config = loadConfig({
      WORLD_FILE: "/nonexistent",
      PAYEE_ADDRESS: payee,
      MODEL_FALLBACKS: "gpt-4.1=claude-sonnet-4-5|gpt-4o,claude-opus-4=claude-sonnet-4",
    });
    expect(config.inference.fallbacks).toEqual({ "gpt-4.1": ["claude-sonnet-4-5", "gpt-4o"], "claude-opus-4": ["claude-sonnet-4"] });
    expect(() => loadConfig({ WORLD_FILE: "/nonexistent", PAYEE_ADDRESS: payee, MODEL_FALLBACKS: "gpt-4.1" })).toThrow(
      /MODEL_FALLBACKS: expected model=fallback/,
    );
  });
});
