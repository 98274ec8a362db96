import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { MONEY_EVENT_FIELD, MONEY_EVENT_KINDS, MONEY_EVENTS_GROUP, MoneyEvent } from "@worldrouter/contracts";
import { UnbalancedLedgerTransactionError } from "@worldrouter/db";
import { counter, gauge, histogram, type Logger } from "@worldrouter/observability";
import { CONFIG, LOGGER, METRICS, processInstanceId, StreamReader, type StreamEntry } from "@worldrouter/runtime";
import type { Counter, Histogram, Registry } from "prom-client";
import { ApplyMoneyEventsUseCase } from "./apply-money-events.use-case.js";
import { idTime, MoneyEventStream } from "./money-event-stream.js";

/** Entries per read (and per transaction). */
const BATCH_SIZE = 256;
/**
 * After a small batch, wait this long before the next read so that events gather into bigger batches: the fixed cost
 * of a batch (transaction, read, acknowledgement) is most of settlement's CPU at moderate load, and nothing waits on
 * the ledger write (the client was answered already). Like Kafka's linger.ms.
 */
const LINGER_MS = 25;
const LINGER_BELOW = BATCH_SIZE / 4;
/** XREADGROUP BLOCK when idle (shutdown unblocks it at once). */
const READ_BLOCK_MS = 1_000;
/** A pending entry idle this long is taken over (its replica died, or is stuck) by whichever replica looks. */
const RECLAIM_IDLE_MS = 30_000;
const RECLAIM_EVERY_MS = 5_000;
/** Deferred usage (its payment event not applied yet) is retried this often while this replica holds it. */
const DEFERRED_RETRY_MS = 500;
/** A usage still without its payment after this long will not get one: parked for ops. */
const DEFER_LIMIT_MS = 24 * 3600_000;
const TRIM_EVERY_MS = 10_000;
/** Backoff of a batch that failed transiently (Postgres or Redis away): doubled per attempt up to the cap. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5_000;

/** SQLSTATE classes worth retrying: connection, transaction rollback (deadlock, serialization), resources, shutdown, system. */
const TRANSIENT_SQLSTATE = /^(08|40|53|57|58)/;

type Parsed = { entry: StreamEntry; event: MoneyEvent };
interface BatchOutcome {
  applied: Parsed[];
  deferred: Parsed[];
  parked: { entry: StreamEntry; error: string }[];
}

/**
 * Settlement's money-event consumer: one consumer of the `settlement` group on the money-event stream (see
 * `@worldrouter/contracts` money-events). Reads up to BATCH_SIZE entries, applies them in ONE transaction
 * (`ApplyMoneyEventsUseCase`) and acknowledges them after COMMIT: a crash in between redelivers the batch, whose
 * claims are taken, so nothing applies twice. A schema-invalid entry, or one that fails alone when its failed
 * batch is replayed one event at a time, is parked with its error (and acknowledged); a transient failure keeps
 * the batch pending and retries it with backoff. Entries a dead replica held are reclaimed after RECLAIM_IDLE_MS;
 * the stream is trimmed below what every group has acknowledged. One batch at a time per replica.
 */
@Injectable()
export class MoneyEventConsumer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly consumer = processInstanceId();
  private readonly reader: StreamReader;
  private readonly deferred = new Map<string, StreamEntry>();
  private serial: Promise<void> = Promise.resolve();
  private retryQueued = false;
  private stopping = false;
  private timers: NodeJS.Timeout[] = [];
  private readonly appliedTotal: Counter<"kind">;
  private readonly parkedTotal: Counter;
  private readonly batchSize: Histogram;

  constructor(
    @Inject(CONFIG) config: Config,
    @Inject(MoneyEventStream) private readonly stream: MoneyEventStream,
    @Inject(ApplyMoneyEventsUseCase) private readonly applyEvents: ApplyMoneyEventsUseCase,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) metrics: Registry,
  ) {
    const onError = (err: Error) => this.logger.warn({ err: err.message }, "money-event consumer error");
    // From "0": events published before any settlement replica existed are applied too.
    this.reader = new StreamReader({
      redis: config.redis,
      commands: stream.commands,
      stream: stream.key,
      group: { name: MONEY_EVENTS_GROUP, consumer: this.consumer, startId: "0" },
      capacity: () => BATCH_SIZE,
      blockMs: READ_BLOCK_MS,
      onEntries: async (entries) => {
        await this.applyEntries(entries);
        if (entries.length < LINGER_BELOW && !this.stopping) await new Promise((resolve) => setTimeout(resolve, LINGER_MS));
      },
      onError,
    });
    this.appliedTotal = counter(metrics, "wr_money_events_applied_total", "Money events applied (acknowledged after COMMIT), by kind", [
      "kind",
    ]);
    for (const kind of MONEY_EVENT_KINDS) this.appliedTotal.inc({ kind }, 0);
    this.parkedTotal = counter(metrics, "wr_money_events_parked_total", "Money events parked in the dead-letter stream with their error");
    this.batchSize = histogram(
      metrics,
      "wr_money_event_batch_size",
      "Money events per applied batch",
      [],
      [1, 2, 4, 8, 16, 32, 64, 128, 256],
    );
    gauge(metrics, "wr_money_events_lag", "Money events not yet delivered to settlement (XINFO GROUPS lag)", async function () {
      const backlog = await stream.backlog();
      this.set(backlog.lag ?? (backlog.undelivered ? Number.NaN : 0));
    });
  }

  async onApplicationBootstrap() {
    await this.stream.connect();
    await this.reader.start();
    const every = (ms: number, task: () => Promise<unknown>, what: string) =>
      setInterval(() => void task().catch((err: Error) => this.logger.warn({ err: err.message }, `${what} failed`)), ms);
    this.timers = [
      every(RECLAIM_EVERY_MS, () => this.reclaim(), "money-event reclaim"),
      every(DEFERRED_RETRY_MS, () => this.retryDeferred(), "deferred money-event retry"),
      every(TRIM_EVERY_MS, () => this.stream.trimAcknowledged(), "money-event stream trim"),
    ];
    for (const timer of this.timers) timer.unref();
  }

  /** Stops reading, lets the batch in progress commit and be acknowledged (before connections close). */
  async beforeApplicationShutdown() {
    this.stopping = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.reader.stop();
    await this.serial;
  }

  /** Takes over entries idle on any replica for `minIdleMs` and applies them. */
  async reclaim(minIdleMs = RECLAIM_IDLE_MS): Promise<number> {
    const entries = await this.stream.claimIdle(this.consumer, minIdleMs, BATCH_SIZE);
    if (entries.length) await this.applyEntries(entries);
    return entries.length;
  }

  /** Applies a set of entries (one batch at a time per replica, in call order). */
  applyEntries(entries: StreamEntry[]): Promise<void> {
    const run = this.serial.then(() => this.applyBatch(entries));
    this.serial = run.catch(() => undefined);
    return run;
  }

  private async retryDeferred(): Promise<void> {
    if (!this.deferred.size || this.stopping || this.retryQueued) return;
    this.retryQueued = true;
    try {
      await this.applyEntries([...this.deferred.values()]);
    } finally {
      this.retryQueued = false;
    }
  }

  private async applyBatch(entries: StreamEntry[]): Promise<void> {
    const valid: Parsed[] = [];
    const invalid: BatchOutcome["parked"] = [];
    for (const entry of entries) {
      const parsed = parseEntry(entry);
      if (parsed.ok) valid.push({ entry, event: parsed.event });
      else invalid.push({ entry, error: parsed.error });
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const outcome = valid.length ? await this.applyIsolating(valid) : { applied: [], deferred: [], parked: [] };
        await this.settle({ ...outcome, parked: [...invalid, ...outcome.parked] });
        return;
      } catch (err) {
        // Transient (Postgres or Redis away): nothing is acknowledged, the batch stays pending here; once this
        // replica stops, another reclaims it.
        if (this.stopping) return;
        const pause = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** attempt);
        this.logger.warn({ err: (err as Error).message, entries: entries.length, retryInMs: pause }, "money-event batch failed; retrying");
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  /** The whole batch, or (after a permanent failure) one event at a time: what fails alone is poison. */
  private async applyIsolating(batch: Parsed[]): Promise<BatchOutcome> {
    try {
      return { ...this.split(batch, await this.applyEvents.apply(batch.map((p) => p.event))), parked: [] };
    } catch (err) {
      if (isTransient(err)) throw err;
      if (batch.length === 1) return { applied: [], deferred: [], parked: [{ entry: batch[0]!.entry, error: describe(err) }] };
      this.logger.warn({ err: (err as Error).message, entries: batch.length }, "money-event batch failed; isolating the event at fault");
    }
    const outcome: BatchOutcome = { applied: [], deferred: [], parked: [] };
    for (const one of batch) {
      const result = await this.applyIsolating([one]);
      outcome.applied.push(...result.applied);
      outcome.deferred.push(...result.deferred);
      outcome.parked.push(...result.parked);
    }
    return outcome;
  }

  private split(batch: Parsed[], result: { deferred: Set<number> }): Omit<BatchOutcome, "parked"> {
    const applied: Parsed[] = [];
    const deferred: Parsed[] = [];
    for (const [index, parsed] of batch.entries()) (result.deferred.has(index) ? deferred : applied).push(parsed);
    return { applied, deferred };
  }

  private async settle({ applied, deferred, parked }: BatchOutcome): Promise<void> {
    const expired = deferred.filter((d) => Date.now() - idTime(d.entry.id) > DEFER_LIMIT_MS);
    const waiting = deferred.filter((d) => !expired.includes(d));
    const toPark = [...parked, ...expired.map((d) => ({ entry: d.entry, error: "its charge payment's event was never applied" }))];
    await this.stream.acknowledge(applied.map((a) => a.entry.id));
    await this.stream.park(toPark);
    for (const { entry } of [...applied, ...toPark]) this.deferred.delete(entry.id);
    for (const { entry } of waiting) this.deferred.set(entry.id, entry);
    for (const { event } of applied) this.appliedTotal.inc({ kind: event.kind });
    if (applied.length) this.batchSize.observe(applied.length);
    if (toPark.length) {
      this.parkedTotal.inc(toPark.length);
      this.logger.error({ parked: toPark.map((p) => ({ entryId: p.entry.id, error: p.error })) }, "money events parked");
    }
  }
}

function parseEntry(entry: StreamEntry): { ok: true; event: MoneyEvent } | { ok: false; error: string } {
  const raw = entry.fields[0] === MONEY_EVENT_FIELD ? entry.fields[1] : undefined;
  if (raw === undefined) return { ok: false, error: `entry has no \`${MONEY_EVENT_FIELD}\` field` };
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch (err) {
    return { ok: false, error: `event is not JSON: ${(err as Error).message}` };
  }
  const parsed = MoneyEvent.safeParse(data);
  return parsed.success ? { ok: true, event: parsed.data } : { ok: false, error: `invalid money event: ${parsed.error.message}` };
}

/**
 * Worth retrying: Postgres SQLSTATEs of the transient classes, and failures with no SQLSTATE that come from the
 * network (a refused or dropped connection, a pool or Redis timeout). Anything else (a constraint, a bad value, an
 * unbalanced posting) fails the same way every time.
 */
function isTransient(err: unknown): boolean {
  if (err instanceof UnbalancedLedgerTransactionError) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return TRANSIENT_SQLSTATE.test(code);
  if (typeof code === "string") return true;
  return /connect|terminat|timeout|closed/i.test((err as Error).message ?? "");
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return `${typeof code === "string" ? `${code}: ` : ""}${(err as Error).message ?? String(err)}`;
}
