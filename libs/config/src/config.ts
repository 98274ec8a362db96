import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { privateKeyToAddress } from "viem/accounts";
import { DEV_MPP_SECRET, DEV_OPS_TOKEN, ENV, type EnvName } from "./env.js";
import { readWorldFile, type World } from "./world.js";

/** Production chain defaults (Tempo mainnet). */
export const TEMPO_MAINNET = {
  rpcUrl: "https://rpc.tempo.xyz",
  chainId: 4217,
  usdce: "0x20c000000000000000000000b9537d11c60e8b50",
  channelEscrow: "0x4d50500000000000000000000000000000000000",
} as const;

type Hex = `0x${string}`;

const FAKE_UPSTREAM_KEY = "local-fake-upstream";

export interface Config {
  env: "development" | "test" | "production";
  logLevel: string;
  databaseUrl: string;
  /** Applied to every service's Postgres pool. */
  database: { connectTimeoutMs: number; statementTimeoutMs: number };
  redis: { url: string; namespace: string; connectTimeoutMs: number; commandTimeoutMs: number };
  gateway: { host: string; port: number; publicUrl: string; realm: string; maxBodyBytes: number; rpcTimeoutMs: number };
  /** What one unpaid request may make the gateway do, and how long a client may take to send it. */
  edge: {
    maxMessages: number;
    maxPromptChars: number;
    tokenizerMaxQueued: number;
    tokenizerMaxQueuedPerClient: number;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
  };
  /** Per-client request budgets of the gateway (per window, shared by replicas) and whose X-Forwarded-For to believe. */
  rateLimits: { windowSeconds: number; unpaid: number; paid: number; session: number; trustedProxies: string[] };
  /** Every service's internal listener (`/healthz`, `/readyz`, `/metrics`): never the public port. */
  health: { host: string; gatewayPort: number; paymentVerifierPort: number; inferenceWorkerPort: number; settlementPort: number };
  /** Local processes per service that `npm start` runs (tools/dev-runner); services themselves ignore it. */
  replicas: { gateway: number; paymentVerifier: number; inferenceWorker: number; settlement: number };
  /** Closing budget after a service's own drain (settlement: its whole shutdown). */
  shutdownTimeoutMs: number;
  /** How long the gateway and the inference workers finish in-flight work on SIGTERM (see `shutdownTimeoutMs()`). */
  drain: { gatewayMs: number; inferenceWorkerMs: number };
  /** The request/reply transport's server side (the caller's timeout is `gateway.rpcTimeoutMs`). */
  rpc: { concurrency: number; reclaimIdleMs: number };
  mpp: { secretKey: string; challengeTtlSeconds: number };
  pricing: { overhead: string; minimumCharge: bigint; defaultMaxTokens: number };
  chain: {
    rpcUrl: string;
    chainId: number;
    token: Hex;
    escrow: Hex;
    payee: Hex | undefined;
    payeePrivateKey: Hex | undefined;
    feePayerPrivateKey: Hex | undefined;
    /** Per JSON-RPC call, from every service. */
    rpcTimeoutMs: number;
    /** Set when the values came from the local world (dev tooling, not production). */
    world: World | undefined;
  };
  upstream: {
    openai: { apiKey: string | undefined; baseUrl: string | undefined };
    anthropic: { apiKey: string | undefined; baseUrl: string | undefined };
    timeoutMs: number;
    maxRetries: number;
  };
  inference: {
    concurrency: number;
    fallbacks: Readonly<Record<string, readonly string[]>>;
    /** How long a gateway waits for a worker to start a job: the job's `deadline` is its dispatch time plus this. */
    replyTimeoutMs: number;
  };
  settlement: { orphanedPaymentMinutes: number };
  /** settlement's ops listener: bearer token, and the read-only database role its reads go through. */
  ops: { host: string; port: number; token: string; readerDatabaseUrl: string; reconcileEverySeconds: number };
  /** Session intent (payment channels); amounts in token base units. */
  session: { minDeposit: bigint; suggestedDeposit: bigint; minVoucherDelta: bigint; vouchersPerSecond: number; voucherWaitMs: number };
  /** What the fee payer co-signs (per transaction) and how many sponsored transactions a verifier has in flight. */
  sponsor: {
    maxInFlight: number;
    maxGas: bigint;
    maxFeePerGas: bigint;
    maxTotalFee: bigint;
    /** Sponsored-gas spend budgets in token base units per window, shared by all verifier replicas (Redis). */
    budget: { windowSeconds: number; perPayer: bigint; global: bigint };
  };
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

/**
 * Parses the environment once. Collects every problem before failing, so one error names every bad
 * variable. Secret values are never echoed.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const problems: string[] = [];
  const values: Partial<Record<EnvName, unknown>> = {};
  for (const [name, spec] of Object.entries(ENV) as [EnvName, (typeof ENV)[EnvName]][]) {
    const raw = env[name] === "" ? undefined : env[name];
    const input = raw ?? ("default" in spec ? spec.default : undefined);
    if (input === undefined) continue;
    const parsed = spec.schema.safeParse(input);
    if (parsed.success) values[name] = parsed.data;
    else {
      const shown = "secret" in spec && spec.secret ? "(value hidden)" : JSON.stringify(input);
      problems.push(`${name}: ${parsed.error.issues.map((i) => i.message).join("; ")} — got ${shown}`);
    }
  }
  // biome-ignore lint/suspicious/noExplicitAny: each value was parsed by its own schema just above; the typed result is built below
  const v = values as { [K in EnvName]: any };
  const production = v.NODE_ENV === "production";
  if (production) problems.push(...productionProblems(env, v));
  if (production && (env.OPS_TOKEN ?? "") === "") problems.push("OPS_TOKEN: required in production");
  else if (production && v.OPS_TOKEN === DEV_OPS_TOKEN) problems.push("OPS_TOKEN: the development token is refused in production");
  if (production && !v.OPS_READER_PASSWORD) problems.push("OPS_READER_PASSWORD: required in production");

  let world: World | undefined;
  if (!production && typeof v.WORLD_FILE === "string") {
    const path = isAbsolute(v.WORLD_FILE) ? v.WORLD_FILE : resolve(cwd, v.WORLD_FILE);
    if (existsSync(path)) {
      try {
        world = readWorldFile(path);
      } catch (err) {
        problems.push(`WORLD_FILE: ${(err as Error).message}`);
      }
    }
  }
  const payee = (v.PAYEE_ADDRESS ?? world?.payee.address)?.toLowerCase();
  if (!payee) problems.push("PAYEE_ADDRESS: required (or start the local world with `npm start`, which writes WORLD_FILE)");
  // A job's deadline falls before its payment can be swept as orphaned (payment recorded → verified within
  // RPC_TIMEOUT_MS → dispatched → deadline), so a swept payment is never still being served.
  const orphanWindowMs = (v.ORPHANED_PAYMENT_MINUTES ?? 0) * 60_000;
  if (v.RPC_TIMEOUT_MS + v.INFERENCE_REPLY_TIMEOUT_MS >= orphanWindowMs)
    problems.push(
      `INFERENCE_REPLY_TIMEOUT_MS: RPC_TIMEOUT_MS (${v.RPC_TIMEOUT_MS}) + INFERENCE_REPLY_TIMEOUT_MS (${v.INFERENCE_REPLY_TIMEOUT_MS}) must be below ORPHANED_PAYMENT_MINUTES (${orphanWindowMs} ms): a job could still start after its payment was refunded as orphaned`,
    );
  if (problems.length) throw new ConfigError(problems);

  const host: string = v.HOST;
  const port: number = v.PORT;
  const publicUrl: string = v.PUBLIC_URL ?? `http://${host}:${port}`;
  const fakeUpstream = world?.upstreamUrl;
  return {
    env: v.NODE_ENV,
    logLevel: v.LOG_LEVEL,
    databaseUrl: v.DATABASE_URL,
    database: { connectTimeoutMs: v.DATABASE_CONNECT_TIMEOUT_MS, statementTimeoutMs: v.DATABASE_STATEMENT_TIMEOUT_MS },
    redis: {
      url: v.REDIS_URL,
      namespace: v.REDIS_NAMESPACE,
      connectTimeoutMs: v.REDIS_CONNECT_TIMEOUT_MS,
      commandTimeoutMs: v.REDIS_COMMAND_TIMEOUT_MS,
    },
    gateway: { host, port, publicUrl, realm: new URL(publicUrl).hostname, maxBodyBytes: v.MAX_BODY_BYTES, rpcTimeoutMs: v.RPC_TIMEOUT_MS },
    edge: {
      maxMessages: v.MAX_MESSAGES,
      maxPromptChars: v.MAX_PROMPT_CHARS,
      tokenizerMaxQueued: v.TOKENIZER_MAX_QUEUED,
      tokenizerMaxQueuedPerClient: v.TOKENIZER_MAX_QUEUED_PER_CLIENT,
      headersTimeoutMs: v.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: v.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: v.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    },
    rateLimits: {
      windowSeconds: v.RATE_LIMIT_WINDOW_SECONDS,
      unpaid: v.RATE_LIMIT_UNPAID,
      paid: v.RATE_LIMIT_PAID,
      session: v.RATE_LIMIT_SESSION,
      trustedProxies: ((v.TRUSTED_PROXIES as string | undefined) ?? "")
        .split(",")
        .map((entry) => entry.trim())
        .filter(Boolean),
    },
    health: {
      host: v.METRICS_HOST,
      gatewayPort: v.METRICS_PORT,
      paymentVerifierPort: v.PAYMENT_VERIFIER_HEALTH_PORT,
      inferenceWorkerPort: v.INFERENCE_WORKER_HEALTH_PORT,
      settlementPort: v.SETTLEMENT_HEALTH_PORT,
    },
    replicas: {
      gateway: v.GATEWAY_REPLICAS ?? v.REPLICAS,
      paymentVerifier: v.PAYMENT_VERIFIER_REPLICAS ?? v.REPLICAS,
      inferenceWorker: v.INFERENCE_WORKER_REPLICAS ?? v.REPLICAS,
      settlement: v.SETTLEMENT_REPLICAS ?? v.REPLICAS,
    },
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    drain: { gatewayMs: v.GATEWAY_DRAIN_MS, inferenceWorkerMs: v.WORKER_DRAIN_MS },
    rpc: { concurrency: v.RPC_CONCURRENCY, reclaimIdleMs: v.RPC_RECLAIM_IDLE_MS },
    mpp: { secretKey: v.MPP_SECRET_KEY, challengeTtlSeconds: v.CHALLENGE_TTL_SECONDS },
    pricing: { overhead: v.PRICE_OVERHEAD, minimumCharge: BigInt(v.MIN_CHARGE), defaultMaxTokens: v.CHARGE_DEFAULT_MAX_TOKENS },
    chain: {
      rpcUrl: v.CHAIN_RPC_URL ?? world?.rpcUrl ?? TEMPO_MAINNET.rpcUrl,
      chainId: v.CHAIN_ID ?? world?.chainId ?? TEMPO_MAINNET.chainId,
      token: lower(v.TOKEN_ADDRESS ?? world?.token.address ?? TEMPO_MAINNET.usdce),
      escrow: lower(v.ESCROW_ADDRESS ?? world?.escrow ?? TEMPO_MAINNET.channelEscrow),
      payee: lower(payee!),
      payeePrivateKey: v.PAYEE_PRIVATE_KEY ?? world?.payee.privateKey,
      feePayerPrivateKey: v.FEE_PAYER_PRIVATE_KEY ?? world?.feePayer.privateKey,
      rpcTimeoutMs: v.CHAIN_RPC_TIMEOUT_MS,
      world,
    },
    upstream: {
      // The local world's fake upstream checks that a key is sent, like the real APIs; any value passes.
      openai: {
        apiKey: v.OPENAI_API_KEY ?? (v.OPENAI_BASE_URL ? undefined : fakeUpstream && FAKE_UPSTREAM_KEY),
        baseUrl: v.OPENAI_BASE_URL ?? (v.OPENAI_API_KEY ? undefined : fakeUpstream && `${fakeUpstream}/v1`),
      },
      anthropic: {
        apiKey: v.ANTHROPIC_API_KEY ?? (v.ANTHROPIC_BASE_URL ? undefined : fakeUpstream && FAKE_UPSTREAM_KEY),
        baseUrl: v.ANTHROPIC_BASE_URL ?? (v.ANTHROPIC_API_KEY ? undefined : fakeUpstream),
      },
      timeoutMs: v.UPSTREAM_TIMEOUT_MS,
      maxRetries: v.UPSTREAM_MAX_RETRIES,
    },
    inference: {
      concurrency: v.INFERENCE_CONCURRENCY,
      fallbacks: parseFallbacks(v.MODEL_FALLBACKS),
      replyTimeoutMs: v.INFERENCE_REPLY_TIMEOUT_MS,
    },
    settlement: { orphanedPaymentMinutes: v.ORPHANED_PAYMENT_MINUTES },
    ops: {
      host: v.OPS_HOST,
      port: v.OPS_PORT,
      token: v.OPS_TOKEN,
      readerDatabaseUrl: readerDatabaseUrl(v.DATABASE_URL, v.OPS_READER_PASSWORD),
      reconcileEverySeconds: v.RECONCILE_EVERY_SECONDS,
    },
    session: {
      minDeposit: BigInt(v.SESSION_MIN_DEPOSIT),
      suggestedDeposit: BigInt(v.SESSION_SUGGESTED_DEPOSIT),
      minVoucherDelta: BigInt(v.SESSION_MIN_VOUCHER_DELTA),
      vouchersPerSecond: v.SESSION_VOUCHERS_PER_SECOND,
      voucherWaitMs: v.SESSION_VOUCHER_WAIT_MS,
    },
    sponsor: {
      maxInFlight: v.SPONSOR_MAX_IN_FLIGHT,
      maxGas: BigInt(v.SPONSOR_MAX_GAS),
      maxFeePerGas: BigInt(v.SPONSOR_MAX_FEE_PER_GAS),
      maxTotalFee: BigInt(v.SPONSOR_MAX_TOTAL_FEE),
      budget: {
        windowSeconds: v.SPONSOR_BUDGET_WINDOW_SECONDS,
        perPayer: BigInt(v.SPONSOR_BUDGET_PER_PAYER),
        global: BigInt(v.SPONSOR_BUDGET_GLOBAL),
      },
    },
  };
}

export type ServiceName = "gateway" | "payment-verifier" | "inference-worker" | "settlement";

/**
 * How long a service may take from SIGTERM to exit: its own drain (in-flight requests, verifications, inferences)
 * plus SHUTDOWN_TIMEOUT_MS to close its connections. A verification in flight ends by its caller's deadline
 * (RPC_TIMEOUT_MS). Past it the service exits anyway; supervisors (`npm start`, Kubernetes' grace period) must wait
 * at least this long before a SIGKILL.
 */
export function shutdownTimeoutMs(config: Config, service: ServiceName): number {
  const drain = {
    gateway: config.drain.gatewayMs,
    "payment-verifier": config.gateway.rpcTimeoutMs,
    "inference-worker": config.drain.inferenceWorkerMs,
    settlement: 0,
  }[service];
  return drain + config.shutdownTimeoutMs;
}

/**
 * What production refuses to start on, each of which would lose money or keys: the public dev secret (anyone could
 * mint challenges), an overhead below 1 (every charge below its cost), a missing payee key (no refund, no channel
 * settlement), a missing fee-payer key (no sponsored charge), a payee key that is not PAYEE_ADDRESS's, and a fee
 * payer that is the payee (the gas budget and the revenue in one account, the sponsor key unlocking both).
 * `v` holds the values that parsed; a variable that failed to parse is reported already.
 */
function productionProblems(env: NodeJS.ProcessEnv, v: Partial<Record<EnvName, unknown>>): string[] {
  const problems: string[] = [];
  if ((env.MPP_SECRET_KEY ?? "") === "") problems.push("MPP_SECRET_KEY: required in production");
  else if (v.MPP_SECRET_KEY === DEV_MPP_SECRET) problems.push("MPP_SECRET_KEY: the development secret is refused in production");
  if (typeof v.PRICE_OVERHEAD === "string" && Number(v.PRICE_OVERHEAD) < 1)
    problems.push(`PRICE_OVERHEAD: below 1 is refused in production (every charge would be below its cost) — got "${v.PRICE_OVERHEAD}"`);
  const keyAddress = (name: "PAYEE_PRIVATE_KEY" | "FEE_PAYER_PRIVATE_KEY"): string | undefined => {
    if (typeof v[name] === "string") return privateKeyToAddress(v[name] as Hex).toLowerCase();
    if ((env[name] ?? "") === "")
      problems.push(
        name === "PAYEE_PRIVATE_KEY"
          ? "PAYEE_PRIVATE_KEY: required in production (refunds and channel settlement are signed by the payee)"
          : "FEE_PAYER_PRIVATE_KEY: required in production (the sponsor co-signs every charge transaction)",
      );
    return undefined;
  };
  const payee = typeof v.PAYEE_ADDRESS === "string" ? v.PAYEE_ADDRESS.toLowerCase() : undefined;
  const payeeKeyAddress = keyAddress("PAYEE_PRIVATE_KEY");
  const feePayer = keyAddress("FEE_PAYER_PRIVATE_KEY");
  if (payee && payeeKeyAddress && payeeKeyAddress !== payee)
    problems.push(`PAYEE_PRIVATE_KEY: is the key of ${payeeKeyAddress}, not of PAYEE_ADDRESS ${payee}`);
  if (feePayer && (feePayer === payee || feePayer === payeeKeyAddress))
    problems.push("FEE_PAYER_PRIVATE_KEY: the fee payer must not be the payee (keep the gas budget and the revenue apart)");
  return problems;
}

/**
 * Whether a provider's models go to its HTTP API (an API key or a base URL is configured, the local world's
 * fake upstream included) rather than the built-in offline `local` provider. The worker routes by it and
 * `/v1/models` reports it.
 */
export function isProviderConfigured(config: Config, provider: "openai" | "anthropic"): boolean {
  const upstream = config.upstream[provider];
  return Boolean(upstream.apiKey || upstream.baseUrl);
}

function parseFallbacks(value: string | undefined): Record<string, string[]> {
  if (!value) return {};
  return Object.fromEntries(
    value.split(",").map((rule) => {
      const [model, fallbacks] = rule.split("=") as [string, string];
      return [model, fallbacks.split("|")];
    }),
  );
}

/** DATABASE_URL with the read-only role `worldrouter_ops_reader` (and its password, when set) instead of its user. */
export function readerDatabaseUrl(databaseUrl: string, password: string | undefined): string {
  const url = new URL(databaseUrl);
  url.username = "worldrouter_ops_reader";
  url.password = password ? encodeURIComponent(password) : "";
  return url.toString();
}

function lower(a: string): Hex {
  return a.toLowerCase() as Hex;
}

/** For `main.ts`: print every problem and exit non-zero before anything starts. */
export function loadConfigOrExit(service: string): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${service}: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}

/** Markdown table of every variable, for README (checked by a test so it cannot drift). */
export function renderEnvTable(): string {
  const rows = Object.entries(ENV).map(([name, spec]) => {
    const devOnly = name === "MPP_SECRET_KEY" || name === "OPS_TOKEN";
    const def = "default" in spec ? (devOnly ? "dev-only value" : `\`${spec.default}\``) : "—";
    return `| \`${name}\` | ${def} | ${spec.description}${"secret" in spec && spec.secret ? " *(secret)*" : ""} |`;
  });
  return ["| variable | default | meaning |", "|---|---|---|", ...rows].join("\n");
}
