import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { PrismaClient } from "@worldrouter/db";
import type { Logger } from "@worldrouter/observability";
import { CONFIG, InferenceAdmissions, JobQueues, Leases, LOGGER, redisOptions, type Lease } from "@worldrouter/runtime";
import { Redis } from "ioredis";
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
 * A payment whose inference has not started may still have its job queued: before it is refunded its request's
 * admission verdict is set to `swept` (`InferenceAdmissions`), so no worker can start that job afterwards (it drops
 * it, reporting a cancelled usage that bills nothing). A request a worker already admitted is left alone: its
 * inference runs, and its `inference.started` or usage settles the payment.
 *
 * Every settlement replica registers the same BullMQ job scheduler (one job per tick, run by one replica); the sweep
 * also takes a lease, so a tick re-run after a stall (or a manual run) never overlaps a running one.
 */
@Injectable()
export class SweepOrphanedChargesUseCase implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly lease: Lease;
  private readonly redis: Redis;
  private readonly admissions: InferenceAdmissions;

  constructor(
    @Inject(PrismaClient) private readonly db: PrismaClient,
    @Inject(JobQueues) private readonly queues: JobQueues,
    @Inject(MoneyEventStream) private readonly moneyEvents: MoneyEventStream,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(Leases) leases: Leases,
  ) {
    this.lease = leases.lease("charges-sweep", SWEEP_LEASE_TTL_MS);
    this.redis = new Redis(redisOptions(config.redis, { maxRetriesPerRequest: 3 }));
    this.redis.on("error", () => {}); // surfaced by the failing command (the sweep is retried next tick)
    this.admissions = new InferenceAdmissions(this.redis, config.redis.namespace, config);
  }

  async onApplicationShutdown() {
    await this.redis.quit().catch(() => this.redis.disconnect());
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
    const candidates = await this.db.$queryRaw<{ id: string; requestId: string }[]>`
      SELECT p."id"::text, COALESCE(p."servedRequestId", p."requestId") AS "requestId" FROM "charge_payments" p
      WHERE p."status" = 'verified'
        AND p."createdAt" < now() - make_interval(mins => ${this.config.settlement.orphanedPaymentMinutes})
        AND NOT EXISTS (SELECT 1 FROM "inference_requests" r WHERE r."id" = COALESCE(p."servedRequestId", p."requestId"))`;
    // No worker may start a swept payment's job from here on; one that started it first keeps it.
    const sweepable: typeof candidates = [];
    for (const candidate of candidates) {
      const { verdict } = await this.admissions.decide(candidate.requestId, "swept");
      if (verdict === "admitted") this.logger.info(candidate, "orphan candidate's inference was admitted by a worker; not swept");
      else sweepable.push(candidate);
    }
    if (sweepable.length === 0) return [];
    // Still verified, still not started, and still the request whose verdict was set (a credential sent again may have
    // been served to another request since).
    const orphaned = await this.db.$queryRaw<{ id: string }[]>`
      UPDATE "charge_payments" p SET "status" = 'refunding', "updatedAt" = now()
      FROM unnest(${sweepable.map((c) => c.id)}::uuid[], ${sweepable.map((c) => c.requestId)}::text[]) AS s("id", "requestId")
      WHERE p."id" = s."id" AND COALESCE(p."servedRequestId", p."requestId") = s."requestId"
        AND p."status" = 'verified'
        AND NOT EXISTS (SELECT 1 FROM "inference_requests" r WHERE r."id" = s."requestId")
      RETURNING p."id"::text`;
    for (const { id } of orphaned) {
      this.logger.warn({ paymentId: id }, "paid charge never reached an inference; refunding on-chain");
      await this.queues.enqueue("settlement", { kind: "refund", reference: id, requestedAt: Date.now() });
    }
    return orphaned.map((o) => o.id);
  }
}
