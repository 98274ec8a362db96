-- What the client paid for a request, next to the seed estimate and the actual cost (the charge price now also
-- covers the largest completion the request allows, so it differs from the estimate).
ALTER TABLE "inference_requests" ADD COLUMN "chargedCost" "token_amount";
