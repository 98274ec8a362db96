-- WorldRouter initial schema: payments, channels, vouchers, inference requests, double-entry ledger,
-- on-chain settlements and idempotency keys. Money: NUMERIC(78,0) token base units.

CREATE TYPE "PaymentIntent" AS ENUM ('charge', 'session');
CREATE TYPE "ChargePaymentStatus" AS ENUM ('verified', 'consumed', 'refunding', 'refunded');
CREATE TYPE "ChannelStatus" AS ENUM ('open', 'closing', 'closed');
CREATE TYPE "InferenceStatus" AS ENUM ('pending', 'succeeded', 'failed', 'cancelled');
CREATE TYPE "SettlementKind" AS ENUM ('charge', 'channel_settle', 'channel_close', 'refund');
CREATE TYPE "SettlementStatus" AS ENUM ('pending', 'submitted', 'confirmed', 'failed');

-- Lowercase 0x-hex only, so equality and unique constraints never miss on letter case.
CREATE DOMAIN "address" AS VARCHAR(42) CHECK (VALUE ~ '^0x[0-9a-f]{40}$');
CREATE DOMAIN "hash32" AS VARCHAR(66) CHECK (VALUE ~ '^0x[0-9a-f]{64}$');
CREATE DOMAIN "token_amount" AS DECIMAL(78, 0) CHECK (VALUE >= 0);

CREATE TABLE "charge_payments" (
    "id" UUID NOT NULL,
    "challengeId" TEXT NOT NULL,
    "txHash" "hash32" NOT NULL,
    "requestId" TEXT NOT NULL,
    "payer" "address" NOT NULL,
    "recipient" "address" NOT NULL,
    "token" "address" NOT NULL,
    "chainId" INTEGER NOT NULL,
    "amount" "token_amount" NOT NULL,
    "blockNumber" BIGINT,
    "status" "ChargePaymentStatus" NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "charge_payments_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "charge_payments_challengeId_key" ON "charge_payments"("challengeId");
CREATE UNIQUE INDEX "charge_payments_txHash_key" ON "charge_payments"("txHash");
CREATE UNIQUE INDEX "charge_payments_requestId_key" ON "charge_payments"("requestId");
CREATE INDEX "charge_payments_payer_createdAt_idx" ON "charge_payments"("payer", "createdAt");

CREATE TABLE "channels" (
    "id" "hash32" NOT NULL,
    "chainId" INTEGER NOT NULL,
    "escrow" "address" NOT NULL,
    "payer" "address" NOT NULL,
    "payee" "address" NOT NULL,
    "operator" "address" NOT NULL,
    "token" "address" NOT NULL,
    "authorizedSigner" "address" NOT NULL,
    "salt" "hash32" NOT NULL,
    "deposit" "token_amount" NOT NULL,
    "acceptedCumulative" "token_amount" NOT NULL DEFAULT 0,
    "spent" "token_amount" NOT NULL DEFAULT 0,
    "settledCumulative" "token_amount" NOT NULL DEFAULT 0,
    "status" "ChannelStatus" NOT NULL DEFAULT 'open',
    "closeRequestedAt" TIMESTAMPTZ(3),
    "openTxHash" "hash32" NOT NULL,
    "closeTxHash" "hash32",
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "channels_pkey" PRIMARY KEY ("id"),
    -- spent ≤ accepted ≤ deposit; settled ≤ accepted: we never take more than the payer signed.
    CONSTRAINT "channels_amounts_ordered" CHECK ("spent" <= "acceptedCumulative" AND "acceptedCumulative" <= "deposit" AND "settledCumulative" <= "acceptedCumulative")
);
CREATE UNIQUE INDEX "channels_openTxHash_key" ON "channels"("openTxHash");
CREATE UNIQUE INDEX "channels_closeTxHash_key" ON "channels"("closeTxHash");
CREATE INDEX "channels_payer_idx" ON "channels"("payer");
CREATE INDEX "channels_status_idx" ON "channels"("status");

CREATE TABLE "vouchers" (
    "id" BIGSERIAL NOT NULL,
    "channelId" "hash32" NOT NULL,
    "cumulativeAmount" "token_amount" NOT NULL,
    "signature" TEXT NOT NULL,
    "receivedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "vouchers_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "vouchers_channelId_cumulativeAmount_key" ON "vouchers"("channelId", "cumulativeAmount");
ALTER TABLE "vouchers" ADD CONSTRAINT "vouchers_channelId_fkey" FOREIGN KEY ("channelId") REFERENCES "channels"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "inference_requests" (
    "id" TEXT NOT NULL,
    "intent" "PaymentIntent" NOT NULL,
    "model" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "payer" "address" NOT NULL,
    "chargePaymentId" UUID,
    "channelId" "hash32",
    "status" "InferenceStatus" NOT NULL,
    "promptTokens" INTEGER NOT NULL DEFAULT 0 CHECK ("promptTokens" >= 0),
    "completionTokens" INTEGER NOT NULL DEFAULT 0 CHECK ("completionTokens" >= 0),
    "cachedTokens" INTEGER NOT NULL DEFAULT 0 CHECK ("cachedTokens" >= 0),
    "estimatedCost" "token_amount" NOT NULL,
    "actualCost" "token_amount",
    "finishReason" TEXT,
    "errorClass" TEXT,
    "ttftMs" INTEGER,
    "latencyMs" INTEGER,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completedAt" TIMESTAMPTZ(3),
    CONSTRAINT "inference_requests_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "inference_requests_payer_createdAt_idx" ON "inference_requests"("payer", "createdAt");
CREATE INDEX "inference_requests_model_createdAt_idx" ON "inference_requests"("model", "createdAt");

CREATE TABLE "ledger_transactions" (
    "id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "reference" TEXT NOT NULL,
    "idempotencyKey" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "ledger_transactions_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "ledger_transactions_idempotencyKey_key" ON "ledger_transactions"("idempotencyKey");
CREATE INDEX "ledger_transactions_reference_idx" ON "ledger_transactions"("reference");

CREATE TABLE "ledger_entries" (
    "id" BIGSERIAL NOT NULL,
    "transactionId" UUID NOT NULL,
    "account" TEXT NOT NULL,
    "amount" DECIMAL(78, 0) NOT NULL CHECK ("amount" <> 0),
    CONSTRAINT "ledger_entries_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "ledger_entries_transactionId_idx" ON "ledger_entries"("transactionId");
CREATE INDEX "ledger_entries_account_idx" ON "ledger_entries"("account");
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_transactionId_fkey" FOREIGN KEY ("transactionId") REFERENCES "ledger_transactions"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Zero-sum invariant, checked at COMMIT (deferred) so a transaction's lines can be inserted one by one.
-- A transaction with fewer than two lines or a non-zero sum cannot be committed.
CREATE FUNCTION "ledger_assert_balanced"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tx UUID := COALESCE(NEW."transactionId", OLD."transactionId");
    total DECIMAL(78, 0);
    lines INTEGER;
BEGIN
    SELECT COALESCE(SUM("amount"), 0), COUNT(*) INTO total, lines FROM "ledger_entries" WHERE "transactionId" = tx;
    IF lines > 0 AND (total <> 0 OR lines < 2) THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced: % lines summing to %', tx, lines, total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_balanced';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER "ledger_entries_balanced"
    AFTER INSERT OR UPDATE OR DELETE ON "ledger_entries"
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "ledger_assert_balanced"();

-- A ledger transaction that never gets lines is also refused at commit.
CREATE FUNCTION "ledger_assert_has_entries"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM "ledger_entries" WHERE "transactionId" = NEW."id") THEN
        RAISE EXCEPTION 'ledger transaction % has no entries', NEW."id"
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_transactions_not_empty';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER "ledger_transactions_not_empty"
    AFTER INSERT ON "ledger_transactions"
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "ledger_assert_has_entries"();

-- The ledger is append-only: corrections are new balancing transactions, never edits.
CREATE FUNCTION "ledger_forbid_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are append-only (% on %)', TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER "ledger_entries_append_only" BEFORE UPDATE OR DELETE ON "ledger_entries" FOR EACH ROW EXECUTE FUNCTION "ledger_forbid_change"();
CREATE TRIGGER "ledger_transactions_append_only" BEFORE UPDATE OR DELETE ON "ledger_transactions" FOR EACH ROW EXECUTE FUNCTION "ledger_forbid_change"();

CREATE TABLE "settlements" (
    "id" UUID NOT NULL,
    "kind" "SettlementKind" NOT NULL,
    "chainId" INTEGER NOT NULL,
    "amount" "token_amount" NOT NULL,
    "txHash" "hash32",
    "status" "SettlementStatus" NOT NULL,
    "blockNumber" BIGINT,
    "chargePaymentId" UUID,
    "channelId" "hash32",
    "rawTransaction" TEXT,
    "error" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "confirmedAt" TIMESTAMPTZ(3),
    CONSTRAINT "settlements_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "settlements_confirmed_has_tx" CHECK ("status" <> 'confirmed' OR "txHash" IS NOT NULL)
);
CREATE UNIQUE INDEX "settlements_txHash_key" ON "settlements"("txHash");
CREATE UNIQUE INDEX "settlements_kind_chargePaymentId_key" ON "settlements"("kind", "chargePaymentId");
CREATE INDEX "settlements_channelId_idx" ON "settlements"("channelId");

CREATE TABLE "processed_events" (
    "consumer" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "processedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "processed_events_pkey" PRIMARY KEY ("consumer", "key")
);
