-- Session intent: a channel keeps its whole on-chain descriptor (the expiring nonce hash completes it, so a voucher
-- or a close can be checked and settled from the row alone) and when it was last used (idle channels are closed).
ALTER TABLE "channels" ADD COLUMN "expiringNonceHash" "hash32" NOT NULL;
ALTER TABLE "channels" ADD COLUMN "lastUsedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT now();
CREATE INDEX "channels_status_lastUsedAt_idx" ON "channels"("status", "lastUsedAt");
