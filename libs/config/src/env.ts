import ipaddr from "ipaddr.js";
import { z } from "zod";

/**
 * Every environment variable WorldRouter reads, with its schema, local default and description.
 * This table is the single source: the config loader parses it, README's configuration table is generated
 * from it (and a test fails if they drift), and docker-compose.yml may only set variables listed here.
 */
export interface EnvVar {
  readonly schema: z.ZodType;
  readonly description: string;
  /** Default used when unset. `undefined` = optional; mandatory vars have a `required` note instead. */
  readonly default?: string;
  /** Never logged or echoed back in errors. */
  readonly secret?: boolean;
}

const port = z.coerce.number().int().min(0).max(65535);
const url = z.url();
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, "expected a 0x-prefixed 20-byte hex address");
const privateKey = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "expected a 0x-prefixed 32-byte hex private key");
const positiveInteger = z.string().regex(/^[1-9]\d*$/, "expected a positive integer");
const baseUnits = z.string().regex(/^\d+$/, "expected an integer amount in token base units");
const decimalRatio = z.string().regex(/^\d+(\.\d{1,6})?$/, "expected a decimal like 1.5 (at most 6 decimals)");

// Dev-only secret so `npm start` needs no setup; refused when NODE_ENV=production.
export const DEV_MPP_SECRET = "worldrouter-local-development-secret-do-not-use-in-production";
// Dev-only ops API token (printed by `npm start`); production must set its own.
export const DEV_OPS_TOKEN = "worldrouter-local-ops-token";

export const ENV = {
  NODE_ENV: {
    schema: z.enum(["development", "test", "production"]),
    default: "development",
    description:
      "Runtime mode: `development`, `test` or `production` (anything else is an error). `production` refuses dev defaults and unsafe settings (docs/operations.md).",
  },
  LOG_LEVEL: {
    schema: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    default: "info",
    description: "pino log level.",
  },
  DATABASE_URL: {
    schema: url,
    default: "postgresql://postgres@127.0.0.1:5432/worldrouter",
    description: "Postgres connection string (the ledger).",
    secret: true,
  },
  REDIS_URL: {
    schema: url,
    default: "redis://127.0.0.1:6379",
    description: "Redis for BullMQ queues, the RPC transport, inference dispatch and chunk streams.",
    secret: true,
  },
  DATABASE_CONNECT_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(100),
    default: "5000",
    description: "Longest wait for a new Postgres connection (every service's pool); then the call fails instead of hanging.",
  },
  DATABASE_STATEMENT_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(100),
    default: "30000",
    description:
      "Postgres `statement_timeout` of every service connection (and the client-side query timeout): a statement running longer is cancelled.",
  },
  REDIS_CONNECT_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(100),
    default: "5000",
    description: "Longest wait for a Redis connection to open (each attempt; ioredis keeps reconnecting with backoff).",
  },
  REDIS_COMMAND_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(100),
    default: "5000",
    description:
      "Timeout of every Redis command on command connections. Blocking reads (XREADGROUP BLOCK, BullMQ workers) run on their own connections, bounded by their block time plus a grace instead.",
  },
  REDIS_NAMESPACE: {
    schema: z.string().regex(/^[a-zA-Z0-9_-]{1,40}$/),
    default: "wr",
    description: "Prefix of every Redis key and channel, so several deployments (or test runs) can share one Redis.",
  },
  HOST: { schema: z.string().min(1), default: "127.0.0.1", description: "Gateway public bind address." },
  PORT: { schema: port, default: "8080", description: "Gateway HTTP port." },
  PUBLIC_URL: {
    schema: url,
    description: "Public base URL of the gateway; its host name (without the port) is the MPP challenge realm. Default: http://HOST:PORT.",
  },
  MAX_BODY_BYTES: {
    schema: z.coerce.number().int().min(1024),
    default: "1048576",
    description: "Largest accepted request body; larger bodies get 413 before parsing.",
  },
  METRICS_HOST: {
    schema: z.string().min(1),
    default: "127.0.0.1",
    description:
      "Bind address of every service's internal listener (`/healthz`, `/readyz`, `/metrics`). Keep it private: only Prometheus and the orchestrator's probes should reach it (docs/operations.md).",
  },
  METRICS_PORT: {
    schema: port,
    default: "8084",
    description: "Gateway internal listener port (`/readyz`, `/metrics`); the public PORT answers 404 for both.",
  },
  TRUSTED_PROXIES: {
    schema: z
      .string()
      .refine(
        (value) =>
          value
            .split(",")
            .every(
              (entry) => entry.trim() === "" || (entry.includes("/") ? ipaddr.isValidCIDR(entry.trim()) : ipaddr.isValid(entry.trim())),
            ),
        "expected comma-separated IP addresses or CIDR ranges",
      ),
    description:
      "Load balancers / proxies (IPs or CIDR ranges, comma-separated) whose `X-Forwarded-For` the gateway believes: behind them a client is the first untrusted hop from the right. Unset: the peer address is the client.",
  },
  RATE_LIMIT_WINDOW_SECONDS: {
    schema: z.coerce.number().int().min(1),
    default: "60",
    description: "Window of the per-client rate limits (fixed window per client and budget, shared by all gateway replicas in Redis).",
  },
  RATE_LIMIT_UNPAID: {
    schema: z.coerce.number().int().min(1),
    default: "120",
    description:
      "Requests without a payment credential (quotes/402s, model lists) one client may send per window; beyond it 429 + Retry-After.",
  },
  RATE_LIMIT_PAID: {
    schema: z.coerce.number().int().min(1),
    default: "120",
    description:
      "Requests carrying `Authorization: Payment` one client may send per window (each is verified, so this bounds verifier work too).",
  },
  RATE_LIMIT_SESSION: {
    schema: z.coerce.number().int().min(1),
    default: "120",
    description: "Session control requests (HEAD or bodiless POST on /x402/v1/chat/completions/stream) one client may send per window.",
  },
  MAX_MESSAGES: {
    schema: z.coerce.number().int().min(1),
    default: "2048",
    description: "Most messages one chat request may carry; more get 400 `too-many-messages` before anything is tokenized.",
  },
  MAX_PROMPT_CHARS: {
    schema: z.coerce.number().int().min(1),
    default: "500000",
    description:
      "Most prompt characters (message text, tool-call arguments, tool definitions) one chat request may carry; more get 413 `prompt-too-large` before anything is tokenized.",
  },
  TOKENIZER_MAX_QUEUED: {
    schema: z.coerce.number().int().min(1),
    default: "256",
    description:
      "Large prompts one gateway process may have waiting for or in its token-counting threads; beyond it 503 `tokenizer-busy` + Retry-After.",
  },
  TOKENIZER_MAX_QUEUED_PER_CLIENT: {
    schema: z.coerce.number().int().min(1),
    default: "4",
    description:
      "Large prompts of one client (as the rate limits see it) waiting for or in the token-counting threads; beyond it 503 + Retry-After.",
  },
  HTTP_HEADERS_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(100),
    default: "10000",
    description:
      "A gateway client must send its complete request headers within this long of connecting (slow-loris guard); then the connection is closed.",
  },
  HTTP_REQUEST_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(100),
    default: "30000",
    description: "A gateway client must send its whole request, body included, within this long; then 408 and the connection is closed.",
  },
  HTTP_KEEP_ALIVE_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(100),
    default: "65000",
    description: "How long the gateway keeps an idle keep-alive connection open (above the load balancer's idle timeout).",
  },
  PAYMENT_VERIFIER_HEALTH_PORT: {
    schema: port,
    default: "8081",
    description: "payment-verifier internal listener port (`/healthz`, `/readyz`, `/metrics`), bound to METRICS_HOST.",
  },
  INFERENCE_WORKER_HEALTH_PORT: {
    schema: port,
    default: "8082",
    description: "inference-worker internal listener port (`/healthz`, `/readyz`, `/metrics`), bound to METRICS_HOST.",
  },
  SETTLEMENT_HEALTH_PORT: {
    schema: port,
    default: "8083",
    description: "settlement internal listener port (`/healthz`, `/readyz`, `/metrics`), bound to METRICS_HOST.",
  },
  REPLICAS: {
    schema: z.coerce.number().int().min(1).max(16),
    default: "1",
    description:
      "`npm start` only: processes of every service to run locally, all on the same Redis, Postgres and chain. Gateway replicas listen on PORT, PORT+1, …; health ports are printed.",
  },
  GATEWAY_REPLICAS: {
    schema: z.coerce.number().int().min(1).max(16),
    description: "`npm start` only: gateway processes (overrides REPLICAS).",
  },
  PAYMENT_VERIFIER_REPLICAS: {
    schema: z.coerce.number().int().min(1).max(16),
    description: "`npm start` only: payment-verifier processes (overrides REPLICAS).",
  },
  INFERENCE_WORKER_REPLICAS: {
    schema: z.coerce.number().int().min(1).max(16),
    description: "`npm start` only: inference-worker processes (overrides REPLICAS).",
  },
  SETTLEMENT_REPLICAS: {
    schema: z.coerce.number().int().min(1).max(16),
    description: "`npm start` only: settlement processes (overrides REPLICAS).",
  },
  SHUTDOWN_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(0),
    default: "15000",
    description:
      "On SIGTERM: how long settlement drains its jobs, and the time every service has to close its connections after its own drain (GATEWAY_DRAIN_MS, WORKER_DRAIN_MS, RPC_TIMEOUT_MS for the verifier); past it the process exits.",
  },
  GATEWAY_DRAIN_MS: {
    schema: z.coerce.number().int().min(0),
    default: "660000",
    description:
      "On SIGTERM the gateway stops accepting requests (503) and relays its in-flight streams and replies for up to this long (longer than WORKER_DRAIN_MS, so draining workers' output still reaches its clients).",
  },
  WORKER_DRAIN_MS: {
    schema: z.coerce.number().int().min(0),
    default: "600000",
    description:
      "On SIGTERM an inference worker stops taking jobs and lets in-flight inferences finish for up to this long (longer than a long completion), still heart-beating; the rest are then cancelled and billed what they delivered.",
  },
  INFERENCE_REPLY_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(1000),
    default: "60000",
    description:
      "How long the gateway waits for a worker to start a paid request (the job's deadline). Past it the client gets 504 and the job is never run: its payment is refunded. RPC_TIMEOUT_MS + this must stay below ORPHANED_PAYMENT_MINUTES.",
  },
  RPC_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(1),
    default: "60000",
    description: "Timeout of gateway → payment-verifier RPC calls; covers broadcasting and confirming the payment on-chain.",
  },
  RPC_CONCURRENCY: {
    schema: z.coerce.number().int().min(1),
    default: "256",
    description: "RPC requests (payment verifications) one payment-verifier process handles at once; more wait in the request stream.",
  },
  RPC_RECLAIM_IDLE_MS: {
    schema: z.coerce.number().int().min(100),
    default: "15000",
    description:
      "An RPC request held this long by a replica that stopped signalling (crashed) is taken over by another replica and rerun, if its caller still waits.",
  },
  ORPHANED_PAYMENT_MINUTES: {
    schema: z.coerce.number().int().min(1),
    default: "15",
    description: "A verified charge with no recorded inference after this long (gateway crashed or timed out) is refunded on-chain.",
  },
  OPS_HOST: {
    schema: z.string().min(1),
    default: "127.0.0.1",
    description: "Bind address of settlement's ops listener (ledger API, dashboard). Keep it private: never the public gateway port.",
  },
  OPS_PORT: {
    schema: port,
    default: "8090",
    description: "settlement's ops listener port (`/ops/api/*`, `/ops/dashboard`). `npm start` gives replica i OPS_PORT + i × 100.",
  },
  OPS_TOKEN: {
    schema: z.string().min(24, "must be at least 24 characters"),
    default: DEV_OPS_TOKEN,
    description: "Bearer token of the ops API and dashboard (constant-time compared). Required in production.",
    secret: true,
  },
  OPS_READER_PASSWORD: {
    schema: z.string().min(12, "must be at least 12 characters"),
    description:
      "Password of the read-only Postgres role `worldrouter_ops_reader` the ops API reads through (set on it by `npm run db:migrate`). Required in production; locally the role logs in like DATABASE_URL's user.",
    secret: true,
  },
  RECONCILE_EVERY_SECONDS: {
    schema: z.coerce.number().int().min(0).max(3600),
    default: "15",
    description:
      "How often settlement compares the payee's on-chain Transfer logs with the ledger (one replica at a time); 0 turns continuous reconciliation off.",
  },
  MPP_SECRET_KEY: {
    schema: z.string().min(32, "must be at least 32 bytes"),
    default: DEV_MPP_SECRET,
    description: "HMAC key for stateless challenge ids (≥ 32 bytes). Required in production.",
    secret: true,
  },
  CHALLENGE_TTL_SECONDS: {
    schema: z.coerce.number().int().min(10).max(3600),
    default: "300",
    description: "How long a 402 challenge stays payable.",
  },
  PRICE_OVERHEAD: {
    schema: decimalRatio,
    default: "1.5",
    description: "Charge-intent multiplier: estimated_cost = prompt_tokens × input_price × overhead. Below 1 is refused in production.",
  },
  MIN_CHARGE: {
    schema: baseUnits,
    default: "2500",
    description:
      "Smallest charge in token base units (6 decimals: 1 = $0.000001). At least the gas of a sponsored transfer plus its refund (docs/money.md).",
  },
  CHARGE_DEFAULT_MAX_TOKENS: {
    schema: z.coerce.number().int().min(1).max(1_000_000),
    default: "4096",
    description:
      "Completion limit of a charge request that sets neither max_completion_tokens nor max_tokens: the price covers it and the provider is called with it (capped at the model's max output).",
  },
  WORLD_FILE: {
    schema: z.string().min(1),
    default: ".local/world.json",
    description:
      "Local world written by tools/devchain; supplies chain, token, payee and fee-payer when the CHAIN_* vars are unset. Ignored in production.",
  },
  CHAIN_STATE_FILE: {
    schema: z.string().min(1),
    default: ".local/chain-state.json",
    description:
      "`npm start` only: where the local chain is kept across runs (anvil --state). `npm run reset` removes it with the dev database.",
  },
  CHAIN_RPC_URL: { schema: url, description: "Tempo JSON-RPC URL. Default: the local world's, else https://rpc.tempo.xyz." },
  CHAIN_ID: { schema: z.coerce.number().int().positive(), description: "Chain id. Default: the local world's, else 4217 (Tempo mainnet)." },
  CHAIN_RPC_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(1),
    default: "15000",
    description:
      "Timeout of one call to the chain (the payment-verifier's simulation, sync broadcast, receipt; settlement's refunds and reads). Keep it below RPC_TIMEOUT_MS.",
  },
  TOKEN_ADDRESS: {
    schema: address,
    description: "Payment token (TIP-20). Default: the local world's, else USDC.e 0x20C000000000000000000000b9537d11c60E8b50.",
  },
  ESCROW_ADDRESS: {
    schema: address,
    description:
      "Channel escrow for sessions. Default: the local world's, else the TIP-1034 precompile 0x4d50500000000000000000000000000000000000.",
  },
  PAYEE_ADDRESS: { schema: address, description: "Recipient of payments. Default: the local world's payee; required otherwise." },
  PAYEE_PRIVATE_KEY: {
    schema: privateKey,
    description:
      "Payee key used by settlement to settle/close channels and refund; must be PAYEE_ADDRESS's key. Default: the local world's; required in production.",
    secret: true,
  },
  FEE_PAYER_PRIVATE_KEY: {
    schema: privateKey,
    description:
      "Sponsor account that co-signs client transactions and pays gas; must not be the payee. Default: the local world's; required in production.",
    secret: true,
  },
  SESSION_MIN_DEPOSIT: {
    schema: positiveInteger,
    default: "1000000",
    description: "Smallest channel deposit a session open is accepted with, in token base units (1000000 = $1).",
  },
  SESSION_SUGGESTED_DEPOSIT: {
    schema: positiveInteger,
    default: "5000000",
    description: "The `suggestedDeposit` of session challenges, in token base units (at least SESSION_MIN_DEPOSIT).",
  },
  SESSION_MIN_VOUCHER_DELTA: {
    schema: positiveInteger,
    default: "1",
    description:
      "Smallest increase of a session voucher's cumulative amount (base units), the `minVoucherDelta` of session challenges. mppx clients raise each request's voucher by the challenge's per-unit amount, so keep it at or below the cheapest model's per-token price (rounded up).",
  },
  SESSION_VOUCHERS_PER_SECOND: {
    schema: z.coerce.number().int().min(1),
    default: "10",
    description: "Vouchers one channel may send per second (all verifier replicas together); beyond it 429.",
  },
  SESSION_VOUCHER_WAIT_MS: {
    schema: z.coerce.number().int().min(1),
    default: "60000",
    description:
      "How long a session stream waits, paused, for the voucher its `payment-need-voucher` event asked for before it ends with an error (billing what was served).",
  },
  SPONSOR_MAX_IN_FLIGHT: {
    schema: z.coerce.number().int().min(1),
    default: "128",
    description:
      "Fee-sponsored transactions one payment-verifier process has in flight at once; more wait. Bounds the sponsor's exposure to SPONSOR_MAX_IN_FLIGHT × SPONSOR_MAX_TOTAL_FEE per process.",
  },
  SPONSOR_MAX_GAS: { schema: positiveInteger, default: "2000000", description: "Largest gas limit the sponsor co-signs." },
  SPONSOR_MAX_FEE_PER_GAS: { schema: positiveInteger, default: "100000000000", description: "Largest maxFeePerGas the sponsor co-signs." },
  SPONSOR_MAX_TOTAL_FEE: {
    schema: positiveInteger,
    default: "50000000000000000",
    description: "Largest gas × maxFeePerGas the sponsor co-signs for one transaction.",
  },
  SPONSOR_BUDGET_WINDOW_SECONDS: {
    schema: z.coerce.number().int().min(1),
    default: "3600",
    description:
      "Window of the sponsored-gas spend budgets (SPONSOR_BUDGET_PER_PAYER, SPONSOR_BUDGET_GLOBAL), shared by all verifier replicas.",
  },
  SPONSOR_BUDGET_PER_PAYER: {
    schema: positiveInteger,
    default: "100000000",
    description:
      "Sponsored gas one payer may reserve per window, in token base units (gas × maxFeePerGas of each co-signed transaction); beyond it 429.",
  },
  SPONSOR_BUDGET_GLOBAL: {
    schema: positiveInteger,
    default: "10000000000",
    description: "Sponsored gas all payers together may reserve per window, in token base units; beyond it 503.",
  },
  OPENAI_API_KEY: {
    schema: z.string().min(1),
    description:
      "OpenAI key. Unset → OpenAI models are served by the fake upstream (local world) or the built-in local provider; in production they are not sold (unlisted, 503).",
    secret: true,
  },
  OPENAI_BASE_URL: {
    schema: url,
    description: "OpenAI API base (default https://api.openai.com/v1, or the local world's fake upstream when no key is set).",
  },
  ANTHROPIC_API_KEY: {
    schema: z.string().min(1),
    description: "Anthropic key. Unset → Anthropic models are served locally, as for OpenAI (not sold in production).",
    secret: true,
  },
  ANTHROPIC_BASE_URL: {
    schema: url,
    description: "Anthropic API base (default https://api.anthropic.com, or the local world's fake upstream when no key is set).",
  },
  UPSTREAM_TIMEOUT_MS: {
    schema: z.coerce.number().int().min(1),
    default: "120000",
    description: "Per-request timeout towards an upstream provider.",
  },
  UPSTREAM_MAX_RETRIES: {
    schema: z.coerce.number().int().min(0).max(10),
    default: "2",
    description: "Retries on 429/5xx before anything was streamed.",
  },
  MODEL_FALLBACKS: {
    schema: z
      .string()
      .regex(/^([\w.:-]+=[\w.:-]+(\|[\w.:-]+)*)(,[\w.:-]+=[\w.:-]+(\|[\w.:-]+)*)*$/, "expected model=fallback1|fallback2,model2=fallback"),
    description:
      "Models to try, in order, when a model's provider is unavailable before anything was streamed, e.g. `gpt-4.1=claude-sonnet-4-5|gpt-4o`.",
  },
  INFERENCE_CONCURRENCY: {
    schema: z.coerce.number().int().min(1),
    default: "256",
    description: "Inference jobs one worker process runs at once.",
  },
} as const satisfies Record<string, EnvVar>;

export type EnvName = keyof typeof ENV;
