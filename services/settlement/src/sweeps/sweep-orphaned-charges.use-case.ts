import { Inject, Injectable, type OnApplicationBootstrap } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { PrismaClient } from "@worldrouter/db";
import type { Logger } from "@worldrouter/observability";
import { CONFIG, JobQueues, Leases, LOGGER, type Lease } from "@worldrouter/runtime";
import { MoneyEventStream } from "../money-events/money-event-stream.js";

const SWEEP_EVERY_MS = 60_000;
/** Money events pending longer than this mean settlement is behind (or a replica died holding them): no sweep. */
const SWEEP_MAX_PENDING_AGE_MS = 60_000;
// One sweep at a time across replicas; a sweep is a few statements, far below this.
const SWEEP_LEASE_TTL_MS = 5 * 60_000;
// A payment moved to `refunding` whose refund job was lost (crash between the update and the enqueue) is queued
// again after this long; a queued or running refund job makes the enqueue a no-op.
const REFUND_REQUEUE_AFTER_MINUTES = 5;

/**
 * Safety net for money: a charge that was verified on-chain but whose inference never started (the gateway
 * crashed or timed out between payment and dispatch, the worker died before its first output) would otherwise
 * stay owed forever. Every minute, such payments older than ORPHANED_PAYMENT_MINUTES are moved to `refunding`
 * (atomically, so a late usage event cannot also bill them) and refunded on-chain. "Never started" means no
 * `inference_requests` row: the worker's `inference.started` event creates it before any output is delivered.
 * That is only known once settlement has applied every money event: while the group has undelivered entries, or
 * entries pending longer than SWEEP_MAX_PENDING_AGE_MS (a settlement down past the window applies its backlog
 * first), the sweep does nothing.
 *
 * Every settlement replica registers the same BullMQ job scheduler (one job per tick, run by one replica); the sweep
 * also takes a lease, so a tick re-run after a stall (or a manual run) never overlaps a running one.
 */
@Injectable()
export class SweepOrphanedChargesUseCase implements OnApplicationBootstrap {
  private readonly lease: Lease;

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(JobQueues) private readonly queues: JobQueues,
    @Inject(MoneyEventStream) private readonly moneyEvents: MoneyEventStream,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(Leases) leases: Leases,
  ) {
    this.lease = leases.lease("charges-sweep", SWEEP_LEASE_TTL_MS);
  }

  async onApplicationBootstrap() {
    await this.queues.queue("settlement").upsertJobScheduler(
      "charges.sweep",
      { every: SWEEP_EVERY_MS },
      {
        name: "settlement",
        data: { kind: "charges.sweep", reference: "orphaned-charges", requestedAt: 0 },
      },
    );
  }

  /** The scheduled tick: sweep, then queue again any refund whose job was lost. Skipped while another replica sweeps. */
  async sweepExclusively(): Promise<string[]> {
    const grant = await this.lease.tryAcquire();
    if (!grant) {
      this.logger.debug("another settlement replica is sweeping; skipping this tick");
      return [];
    }
    try {
      const swept = await this.sweep();
      await grant.assertHeld();
      await this.requeueLostRefunds();
      return swept;
    } finally {
      await grant.release().catch(() => false);
    }
  }

  /**
   * Payments left `refunding` without a live refund job (the process died between marking and enqueueing) get one.
   * A refund that gave up (`failed`) is left to an operator: requeueing it every minute would defeat its backoff.
   */
  async requeueLostRefunds(): Promise<string[]> {
    const lost = await this.db.$queryRaw<{ id: string }[]>`
      SELECT p."id"::text FROM "charge_payments" p
      WHERE p."status" = 'refunding'
        AND p."updatedAt" < now() - make_interval(mins => ${REFUND_REQUEUE_AFTER_MINUTES})
        AND NOT EXISTS (SELECT 1 FROM "settlements" s WHERE s."kind" = 'refund' AND s."chargePaymentId" = p."id" AND s."status" = 'failed')`;
    for (const { id } of lost) await this.queues.enqueue("settlement", { kind: "refund", reference: id, requestedAt: Date.now() });
    return lost.map((l) => l.id);
  }

  async sweep(): Promise<string[]> {
    const backlog = await this.moneyEvents.backlog();
    if (backlog.undelivered || (backlog.oldestPendingAgeMs ?? 0) > SWEEP_MAX_PENDING_AGE_MS) {
      this.logger.warn(backlog, "orphaned-charge sweep skipped: settlement has not applied every money event yet");
      return [];
    }
    const orphaned = await this.db.$queryRaw<{ id: string }[]>`
      UPDATE "charge_payments" SET "status" = 'refunding', "updatedAt" = now()
      WHERE "status" = 'verified'
        AND "createdAt" < now() - make_interval(mins => ${this.config.settlement.orphanedPaymentMinutes})
        AND NOT EXISTS (SELECT 1 FROM "inference_requests" r
          WHERE r."id" = COALESCE("charge_payments"."servedRequestId", "charge_payments"."requestId"))
      RETURNING "id"::text`;
    for (const { id } of orphaned) {
      this.logger.warn({ paymentId: id }, "paid charge never reached an inference; refunding on-chain");
      await this.queues.enqueue("settlement", { kind: "refund", reference: id, requestedAt: Date.now() });
    }
    return orphaned.map((o) => o.id);
  }
}
