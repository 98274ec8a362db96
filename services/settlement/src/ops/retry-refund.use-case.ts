import { Inject, Injectable } from "@nestjs/common";
import { PgPool } from "@worldrouter/db";
import type { Logger } from "@worldrouter/observability";
import { JobQueues, LOGGER } from "@worldrouter/runtime";
import { ActionConflictError, NotFoundError } from "./ops-problem.js";

export interface OpsActionResult {
  id: string;
  action: string;
  target: string;
  outcome: string;
  detail: string | null;
  createdAt: string;
  /** False when this call replayed an earlier one with the same idempotency key. */
  performed: boolean;
}

// One statement: the audit row (its idempotency key unique) and the compare-and-set of the refund from `failed` back to
// where its retry starts (`submitted` when a transaction was already signed: the job looks its hash up first). Nothing
// is written unless both happen.
const RETRY_FAILED_REFUND = `
WITH reopened AS (
  UPDATE "settlements" SET "status" = CASE WHEN "txHash" IS NULL THEN 'pending'::"SettlementStatus" ELSE 'submitted'::"SettlementStatus" END
  WHERE "kind" = 'refund' AND "chargePaymentId" = $1::uuid AND "status" = 'failed'
    AND EXISTS (SELECT 1 FROM "charge_payments" p WHERE p."id" = $1::uuid AND p."status" = 'refunding')
  RETURNING "id", "error"),
audit AS (
  INSERT INTO "ops_actions" ("action", "target", "idempotencyKey", "actor", "outcome", "detail")
  SELECT 'refund.retry', $1, $2, $3, 'queued', 'last error: ' || COALESCE(reopened."error", 'none') FROM reopened
  ON CONFLICT ("idempotencyKey") DO NOTHING
  RETURNING "id"::text, "action", "target", "outcome", "detail", "createdAt")
SELECT * FROM audit`;

/**
 * Ops action: retry a refund that gave up after every attempt (`failed`, counted by wr_refunds_stuck). Idempotent by
 * key: the same key again answers the first call's result and does nothing; a refund that is not failed any more
 * (already retried, refunded) is a 409. The refund itself runs as an ordinary settlement job, under the payee signer
 * lease, with the full retry budget again.
 */
@Injectable()
export class RetryRefundUseCase {
  constructor(
    @Inject(PgPool) private readonly pool: PgPool,
    @Inject(JobQueues) private readonly queues: JobQueues,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async retry(command: { paymentId: string; idempotencyKey: string; actor: string }): Promise<OpsActionResult> {
    const replay = await this.recorded(command.idempotencyKey);
    if (replay) return replay;
    const client = await this.pool.connect();
    let action: OpsActionResult | undefined;
    try {
      await client.query("BEGIN");
      const { rows } = await client.query<Omit<OpsActionResult, "performed" | "createdAt"> & { createdAt: Date }>(RETRY_FAILED_REFUND, [
        command.paymentId,
        command.idempotencyKey,
        command.actor,
      ]);
      if (rows[0]) action = { ...rows[0], createdAt: rows[0].createdAt.toISOString(), performed: true };
      // A concurrent call with the same key won the audit row: undo our reopening, answer theirs.
      if (!action) await client.query("ROLLBACK");
      else await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    if (!action) {
      const concurrent = await this.recorded(command.idempotencyKey);
      if (concurrent) return concurrent;
      throw await this.whyNot(command.paymentId);
    }
    // After COMMIT: a crash before this add leaves the refund `refunding` and not failed, which the sweep requeues.
    await this.queues.enqueue("settlement", { kind: "refund", reference: command.paymentId, requestedAt: Date.now() });
    this.logger.warn({ paymentId: command.paymentId, actor: command.actor, actionId: action.id }, "ops: failed refund queued again");
    return action;
  }

  private async recorded(idempotencyKey: string): Promise<OpsActionResult | undefined> {
    const { rows } = await this.pool.query<Omit<OpsActionResult, "performed" | "createdAt"> & { createdAt: Date }>(
      `SELECT "id"::text, "action", "target", "outcome", "detail", "createdAt" FROM "ops_actions" WHERE "idempotencyKey" = $1`,
      [idempotencyKey],
    );
    return rows[0] ? { ...rows[0], createdAt: rows[0].createdAt.toISOString(), performed: false } : undefined;
  }

  private async whyNot(paymentId: string): Promise<Error> {
    const { rows } = await this.pool.query<{ payment: string; refund: string | null }>(
      `SELECT p."status"::text AS "payment", s."status"::text AS "refund" FROM "charge_payments" p
       LEFT JOIN "settlements" s ON s."kind" = 'refund' AND s."chargePaymentId" = p."id" WHERE p."id" = $1::uuid`,
      [paymentId],
    );
    const row = rows[0];
    if (!row) return new NotFoundError(`no charge payment ${paymentId}`);
    return new ActionConflictError(
      `only a failed refund can be retried: payment ${paymentId} is ${row.payment}, its refund ${row.refund ?? "has no transaction row"}`,
    );
  }
}
