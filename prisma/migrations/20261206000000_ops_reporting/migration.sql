-- Ops: `reporting.*` views over the ledger (what BI tools and the ops API read, so neither needs to know the tables),
-- a read-only role that may read only them, the ops actions audit table, and continuous reconciliation's cursor and
-- mismatch rows. The reader's password is set by prisma/migrate.mjs from OPS_READER_PASSWORD (never in a file).

-- Roles are per cluster, databases per migration run: create once, tolerate a concurrent creator (parallel test runs).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'worldrouter_ops_reader') THEN
        CREATE ROLE "worldrouter_ops_reader" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
-- Belt and braces: every transaction of the role is read-only even if a grant slips through.
ALTER ROLE "worldrouter_ops_reader" SET default_transaction_read_only = on;

-- Who did what from the ops API: one row per action, its idempotency key unique (a repeated click does it once).
CREATE TABLE "ops_actions" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "action" TEXT NOT NULL,
    "target" TEXT NOT NULL,
    "idempotencyKey" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "outcome" TEXT NOT NULL,
    "detail" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "ops_actions_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "ops_actions_idempotencyKey_key" ON "ops_actions"("idempotencyKey");
CREATE INDEX "ops_actions_target_idx" ON "ops_actions"("target");

-- Continuous reconciliation: the last block compared per stream (payee + token), so a restart resumes there.
CREATE TABLE "reconciliation_cursors" (
    "stream" TEXT NOT NULL,
    "chainId" INTEGER NOT NULL,
    "lastBlock" BIGINT NOT NULL,
    "checkedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "reconciliation_cursors_pkey" PRIMARY KEY ("stream")
);

-- One row per disagreement between the ledger and the chain; `resolvedAt` set when a later pass finds it agrees.
CREATE TABLE "reconciliation_mismatches" (
    "id" BIGSERIAL NOT NULL,
    "stream" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "txHash" "hash32" NOT NULL,
    "recorded" DECIMAL(78, 0),
    "onChain" DECIMAL(78, 0),
    "fromBlock" BIGINT NOT NULL,
    "toBlock" BIGINT NOT NULL,
    "detectedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "resolvedAt" TIMESTAMPTZ(3),
    CONSTRAINT "reconciliation_mismatches_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "reconciliation_mismatches_stream_kind_txHash_key" ON "reconciliation_mismatches"("stream", "kind", "txHash");
CREATE INDEX "reconciliation_mismatches_open_idx" ON "reconciliation_mismatches"("detectedAt") WHERE "resolvedAt" IS NULL;

-- Dashboard queries go by time over the whole table.
CREATE INDEX "inference_requests_createdAt_idx" ON "inference_requests"("createdAt");
CREATE INDEX "charge_payments_createdAt_idx" ON "charge_payments"("createdAt");
CREATE INDEX "settlements_kind_status_idx" ON "settlements"("kind", "status");

CREATE SCHEMA "reporting";

-- One row per inference request: estimate, charge and actual cost side by side. `billed`: its money was kept (the
-- payment was consumed, or a session request with a cost); `margin` = charged − actual on billed rows.
CREATE VIEW "reporting"."requests" AS
SELECT r."id", r."createdAt" AS "created_at", r."completedAt" AS "completed_at", r."intent"::text AS "intent", r."model",
    r."provider", r."payer", r."status"::text AS "status", r."promptTokens" AS "prompt_tokens",
    r."completionTokens" AS "completion_tokens", r."estimatedCost" AS "estimated_cost",
    COALESCE(r."chargedCost", p."amount", r."estimatedCost") AS "charged_cost", r."actualCost" AS "actual_cost",
    (CASE WHEN r."intent" = 'charge' THEN p."status" = 'consumed' ELSE r."actualCost" IS NOT NULL END) AS "billed",
    r."chargePaymentId" AS "charge_payment_id", p."status"::text AS "payment_status", r."channelId" AS "channel_id",
    r."ttftMs" AS "ttft_ms", r."latencyMs" AS "latency_ms", r."errorClass" AS "error_class"
FROM "inference_requests" r
LEFT JOIN "charge_payments" p ON p."id" = r."chargePaymentId";

CREATE VIEW "reporting"."payments" AS
SELECT p."id", p."createdAt" AS "created_at", p."payer", p."amount", p."status"::text AS "status", p."txHash" AS "tx_hash",
    p."blockNumber" AS "block_number", p."requestId" AS "request_id", p."servedRequestId" AS "served_request_id",
    p."chainId" AS "chain_id", p."token", p."recipient"
FROM "charge_payments" p;

CREATE VIEW "reporting"."settlements" AS
SELECT s."id", s."createdAt" AS "created_at", s."kind"::text AS "kind", s."status"::text AS "status", s."amount",
    s."txHash" AS "tx_hash", s."blockNumber" AS "block_number", s."chargePaymentId" AS "charge_payment_id",
    s."channelId" AS "channel_id", s."error", s."confirmedAt" AS "confirmed_at", p."payer"
FROM "settlements" s
LEFT JOIN "charge_payments" p ON p."id" = s."chargePaymentId";

-- Refunds: every payment the ledger owes back or gave back (a `refunding` payment without a row yet is `queued`), by
-- the payment's time.
CREATE VIEW "reporting"."refunds" AS
SELECT p."id", p."createdAt" AS "created_at", p."id" AS "payment_id", p."payer", p."amount",
    COALESCE(s."status"::text, CASE p."status" WHEN 'refunding' THEN 'queued' ELSE p."status"::text END) AS "status",
    p."status"::text AS "payment_status", s."txHash" AS "tx_hash", s."error", s."confirmedAt" AS "confirmed_at"
FROM "charge_payments" p
LEFT JOIN "settlements" s ON s."kind" = 'refund' AND s."chargePaymentId" = p."id"
WHERE p."status" IN ('refunding', 'refunded', 'kept_as_dust');

-- Channels (session intent): exposure = accepted − settled (signed to us, not yet on-chain).
CREATE VIEW "reporting"."channels" AS
SELECT c."id", c."createdAt" AS "created_at", c."payer", c."status"::text AS "status", c."deposit",
    c."acceptedCumulative" AS "accepted", c."spent", c."settledCumulative" AS "settled",
    c."acceptedCumulative" - c."settledCumulative" AS "exposure", c."openTxHash" AS "open_tx_hash",
    c."closeTxHash" AS "close_tx_hash", c."closeRequestedAt" AS "close_requested_at"
FROM "channels" c;

CREATE VIEW "reporting"."ledger_entries" AS
SELECT e."id", t."createdAt" AS "created_at", t."kind", t."reference", e."account", e."amount", t."id" AS "transaction_id"
FROM "ledger_entries" e
JOIN "ledger_transactions" t ON t."id" = e."transactionId";

CREATE VIEW "reporting"."account_balances" AS
SELECT e."account", SUM(e."amount") AS "balance", count(*) AS "entries"
FROM "ledger_entries" e
GROUP BY e."account";

CREATE VIEW "reporting"."reconciliation_mismatches" AS
SELECT m."id", m."detectedAt" AS "created_at", m."stream", m."kind", m."txHash" AS "tx_hash", m."recorded", m."onChain" AS "on_chain",
    m."fromBlock" AS "from_block", m."toBlock" AS "to_block", m."resolvedAt" AS "resolved_at"
FROM "reconciliation_mismatches" m;

CREATE VIEW "reporting"."reconciliation_cursors" AS
SELECT c."stream", c."chainId" AS "chain_id", c."lastBlock" AS "last_block", c."checkedAt" AS "checked_at"
FROM "reconciliation_cursors" c;

CREATE VIEW "reporting"."ops_actions" AS
SELECT a."id", a."createdAt" AS "created_at", a."action", a."target", a."actor", a."outcome", a."detail"
FROM "ops_actions" a;

-- The reader sees the reporting schema and nothing else (views run with their owner's rights).
REVOKE ALL ON SCHEMA "public" FROM "worldrouter_ops_reader";
GRANT USAGE ON SCHEMA "reporting" TO "worldrouter_ops_reader";
GRANT SELECT ON ALL TABLES IN SCHEMA "reporting" TO "worldrouter_ops_reader";
ALTER DEFAULT PRIVILEGES IN SCHEMA "reporting" GRANT SELECT ON TABLES TO "worldrouter_ops_reader";
