import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "@worldrouter/config";
import { describe, expect, it } from "vitest";
import { primesEscrowOpens } from "./verify-session.use-case.js";

const key = (byte: string) => `0x${byte.repeat(32)}`;

describe("dev-only open priming", () => {
  const dir = mkdtempSync(join(tmpdir(), "wr-priming-"));
  writeFileSync(
    join(dir, "world.json"),
    JSON.stringify({
      rpcUrl: "http://127.0.0.1:9545",
      chainId: 4217,
      token: { address: "0x20C0000000000000000000000000000000000001", decimals: 6, symbol: "USDC.e", name: "USDC.e" },
      escrow: "0x4d50500000000000000000000000000000000000",
      feePayer: { address: "0x00000000000000000000000000000000000000f1", privateKey: key("22") },
      payee: { address: "0x00000000000000000000000000000000000000f2", privateKey: key("11") },
      wallets: [{ address: "0x00000000000000000000000000000000000000f3", privateKey: key("33"), balance: "1000000" }],
      upstreamUrl: "http://127.0.0.1:9000",
    }),
  );

  it("primes only against the local world's stand-in", () => {
    expect(primesEscrowOpens(loadConfig({ WORLD_FILE: "world.json" }, dir))).toBe(true);
    expect(
      primesEscrowOpens(
        loadConfig({ WORLD_FILE: "/nonexistent/world.json", PAYEE_ADDRESS: "0x00000000000000000000000000000000000000f2" }, dir),
      ),
    ).toBe(false);
  });

  it("never with production configuration, even with the world file present", () => {
    const production = loadConfig(
      {
        WORLD_FILE: "world.json",
        NODE_ENV: "production",
        MPP_SECRET_KEY: "a-real-production-secret-of-at-least-32-bytes",
        PAYEE_ADDRESS: "0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a",
        PAYEE_PRIVATE_KEY: key("11"),
        FEE_PAYER_PRIVATE_KEY: key("22"),
        OPS_TOKEN: "a-production-ops-token-of-some-length",
        OPS_READER_PASSWORD: "a-reader-password",
      },
      dir,
    );
    expect(production.chain.world).toBeUndefined();
    expect(primesEscrowOpens(production)).toBe(false);
  });
});
