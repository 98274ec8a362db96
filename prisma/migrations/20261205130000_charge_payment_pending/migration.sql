-- Paid once: a sponsored charge's payment row is written `pending` (its tx hash is known) before the broadcast, and
-- ends `verified` (mined) or `failed` (reverted, or can no longer be mined). `resolveAfter`: when the charge-outcomes
-- job may look its receipt up (later than any verification still running); `mineableUntil`: the transaction's
-- validBefore. `servedRequestId`/`servedAt`: the one request a verified payment is served to.
ALTER TYPE "ChargePaymentStatus" ADD VALUE 'pending';
ALTER TYPE "ChargePaymentStatus" ADD VALUE 'failed';
ALTER TABLE "charge_payments" ADD COLUMN "resolveAfter" TIMESTAMPTZ(3);
ALTER TABLE "charge_payments" ADD COLUMN "mineableUntil" TIMESTAMPTZ(3);
ALTER TABLE "charge_payments" ADD COLUMN "servedRequestId" TEXT;
ALTER TABLE "charge_payments" ADD COLUMN "servedAt" TIMESTAMPTZ(3);
CREATE INDEX "charge_payments_status_resolveAfter_idx" ON "charge_payments"("status", "resolveAfter");
