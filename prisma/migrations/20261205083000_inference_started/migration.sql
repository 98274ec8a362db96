-- When a request's inference delivered its first output (settlement records the worker's `inference.started` money
-- event as a `pending` row with this time; usage completes the same row). A charge payment whose request has such
-- a row was served, in part at least: the orphan sweep never refunds it.
ALTER TABLE "inference_requests" ADD COLUMN "startedAt" TIMESTAMPTZ(3);
