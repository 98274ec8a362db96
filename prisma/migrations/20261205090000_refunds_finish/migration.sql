-- Refunds finish: a refund smaller than the gas it would cost is not sent; its payment ends `kept_as_dust`
-- (booked to revenue:refund_dust). A refund's transaction remembers the nonce it was signed with, so a retry can
-- tell "not mined yet" from "that nonce went to another transaction" (then it is signed again).
ALTER TYPE "ChargePaymentStatus" ADD VALUE 'kept_as_dust';
ALTER TABLE "settlements" ADD COLUMN "nonce" BIGINT;
