import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { channelStateKey } from "@worldrouter/contracts";
import { Redis } from "ioredis";
import { redisOptions } from "./redis.js";
import { CONFIG } from "./tokens.js";

/**
 * A session channel's live balance in Redis, shared by every gateway and verifier replica: what the payer has
 * authorised (`accepted`, the highest voucher), what requests have `spent` (committed) and what running requests
 * hold (`reserved`). Every change is one Lua script, so concurrent requests on one channel, on any replica, can
 * never spend more than was accepted: spendable = accepted − spent − reserved, checked and taken atomically.
 * Amounts are integers in token base units (HINCRBY; comparisons in Lua doubles are exact below 2^53, which the
 * verifier enforces on deposits).
 */

/** Creates the channel's state unless it exists (a second open of the same channel changes nothing). */
const OPEN = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'accepted', ARGV[1], 'deposit', ARGV[2], 'spent', ARGV[3], 'reserved', '0', 'closing', ARGV[4], 'payer', ARGV[5], 'signer', ARGV[6], 'readAt', ARGV[7])
return 1`;

/**
 * Raises accepted (a voucher) and the deposit (a top-up or a fresh chain read), never lowering either; records when
 * the chain was read (ARGV[3]) and a close request seen there (ARGV[4] = '1').
 */
const ACCEPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[1] ~= '' and tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'accepted')) then redis.call('HSET', KEYS[1], 'accepted', ARGV[1]) end
if ARGV[2] ~= '' and tonumber(ARGV[2]) > tonumber(redis.call('HGET', KEYS[1], 'deposit')) then redis.call('HSET', KEYS[1], 'deposit', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'readAt', ARGV[3]) end
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'closing', '1') end
return 1`;

/**
 * Adds ARGV[2] to request ARGV[1]'s reservation if the spendable balance covers it. Returns {1} or
 * {0, reason, accepted, spent, reserved, deposit} (reason: missing, closing, insufficient).
 */
const RESERVE = `
local s = redis.call('HMGET', KEYS[1], 'accepted', 'spent', 'reserved', 'deposit', 'closing')
if not s[1] then return {0, 'missing', '0', '0', '0', '0'} end
if s[5] == '1' then return {0, 'closing', s[1], s[2], s[3], s[4]} end
local amount = tonumber(ARGV[2])
if tonumber(s[1]) - tonumber(s[2]) - tonumber(s[3]) < amount then return {0, 'insufficient', s[1], s[2], s[3], s[4]} end
redis.call('HINCRBY', KEYS[1], 'reserved', ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2])
return {1}`;

/**
 * Ends request ARGV[1]'s reservation: spends ARGV[2] of it (never more than it holds) and frees the rest.
 * Returns {spentNow, spent, accepted, deposit}; a request with no reservation (committed already) spends nothing.
 */
const COMMIT = `
local heldText = redis.call('HGET', KEYS[2], ARGV[1]) or '0'
local amount = ARGV[2]
if tonumber(amount) > tonumber(heldText) then amount = heldText end
if heldText ~= '0' then
  redis.call('HINCRBY', KEYS[1], 'reserved', '-' .. heldText)
  redis.call('HDEL', KEYS[2], ARGV[1])
end
if amount ~= '0' then redis.call('HINCRBY', KEYS[1], 'spent', amount) end
local s = redis.call('HMGET', KEYS[1], 'spent', 'accepted', 'deposit')
return {amount, s[1] or '0', s[2] or '0', s[3] or '0'}`;

/** No new reservations from now on; returns {accepted, spent, reserved, deposit} (a close waits for reserved = 0). */
const MARK_CLOSING = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('HSET', KEYS[1], 'closing', '1')
return redis.call('HMGET', KEYS[1], 'accepted', 'spent', 'reserved', 'deposit')`;

/** At most ARGV[2] calls per second per key: INCR of a one-second bucket. Returns 1 when allowed. */
const RATE = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], 2000) end
if n > tonumber(ARGV[1]) then return 0 end
return 1`;

export interface ChannelBalance {
  accepted: bigint;
  spent: bigint;
  reserved: bigint;
  deposit: bigint;
  closing: boolean;
  payer: string;
  signer: string;
  /** When the on-chain state was last read (epoch ms). */
  readAt: number;
}

export type ReserveOutcome =
  | { ok: true }
  | { ok: false; reason: "missing" | "closing" | "insufficient"; accepted: bigint; spent: bigint; reserved: bigint; deposit: bigint };

export interface CommitOutcome {
  /** What this commit spent (≤ the request's reservation). */
  spentNow: bigint;
  spent: bigint;
  accepted: bigint;
  deposit: bigint;
}

type Scripted = Redis & {
  channelOpen(state: string, ...args: string[]): Promise<number>;
  channelAccept(state: string, ...args: string[]): Promise<number>;
  channelReserve(state: string, reservations: string, ...args: string[]): Promise<string[] | [number]>;
  channelCommit(state: string, reservations: string, ...args: string[]): Promise<string[]>;
  channelMarkClosing(state: string): Promise<string[]>;
  channelRate(bucket: string, limit: string): Promise<number>;
};

export class ChannelBalances {
  private readonly redis: Scripted;

  constructor(
    redis: Redis,
    private readonly namespace: string,
  ) {
    redis.defineCommand("channelOpen", { numberOfKeys: 1, lua: OPEN });
    redis.defineCommand("channelAccept", { numberOfKeys: 1, lua: ACCEPT });
    redis.defineCommand("channelReserve", { numberOfKeys: 2, lua: RESERVE });
    redis.defineCommand("channelCommit", { numberOfKeys: 2, lua: COMMIT });
    redis.defineCommand("channelMarkClosing", { numberOfKeys: 1, lua: MARK_CLOSING });
    redis.defineCommand("channelRate", { numberOfKeys: 1, lua: RATE });
    this.redis = redis as Scripted;
  }

  private key(channelId: string): string {
    return channelStateKey(this.namespace, channelId);
  }

  /** Creates the live state of a channel (from the chain and Postgres) unless it exists; true when created. */
  async open(channelId: string, state: Omit<ChannelBalance, "reserved">): Promise<boolean> {
    const created = await this.redis.channelOpen(
      this.key(channelId),
      state.accepted.toString(),
      state.deposit.toString(),
      state.spent.toString(),
      state.closing ? "1" : "0",
      state.payer,
      state.signer,
      String(state.readAt),
    );
    return created === 1;
  }

  async get(channelId: string): Promise<ChannelBalance | undefined> {
    const [accepted, spent, reserved, deposit, closing, payer, signer, readAt] = await this.redis.hmget(
      this.key(channelId),
      "accepted",
      "spent",
      "reserved",
      "deposit",
      "closing",
      "payer",
      "signer",
      "readAt",
    );
    if (accepted === null || accepted === undefined) return undefined;
    return {
      accepted: BigInt(accepted),
      spent: BigInt(spent ?? "0"),
      reserved: BigInt(reserved ?? "0"),
      deposit: BigInt(deposit ?? "0"),
      closing: closing === "1",
      payer: payer ?? "",
      signer: signer ?? "",
      readAt: Number(readAt ?? 0),
    };
  }

  /** Raises accepted and/or the deposit; false when the channel has no live state. */
  async accept(
    channelId: string,
    update: { accepted?: bigint; deposit?: bigint; readAt?: number; closeRequested?: boolean },
  ): Promise<boolean> {
    const done = await this.redis.channelAccept(
      this.key(channelId),
      update.accepted?.toString() ?? "",
      update.deposit?.toString() ?? "",
      update.readAt?.toString() ?? "",
      update.closeRequested ? "1" : "0",
    );
    return done === 1;
  }

  /** Grows request `requestId`'s reservation by `amount` if the spendable balance covers it. */
  async reserve(channelId: string, requestId: string, amount: bigint): Promise<ReserveOutcome> {
    const key = this.key(channelId);
    const result = await this.redis.channelReserve(key, `${key}:res`, requestId, amount.toString());
    if (Number(result[0]) === 1) return { ok: true };
    const [, reason, accepted, spent, reserved, deposit] = result as string[];
    return {
      ok: false,
      reason: reason as "missing" | "closing" | "insufficient",
      accepted: BigInt(accepted!),
      spent: BigInt(spent!),
      reserved: BigInt(reserved!),
      deposit: BigInt(deposit!),
    };
  }

  /** Spends `amount` of the request's reservation (capped at it) and frees the rest. Idempotent per request. */
  async commit(channelId: string, requestId: string, amount: bigint): Promise<CommitOutcome> {
    const key = this.key(channelId);
    const [spentNow, spent, accepted, deposit] = await this.redis.channelCommit(key, `${key}:res`, requestId, amount.toString());
    return { spentNow: BigInt(spentNow!), spent: BigInt(spent!), accepted: BigInt(accepted!), deposit: BigInt(deposit!) };
  }

  /** Frees the request's whole reservation (it served nothing). */
  async release(channelId: string, requestId: string): Promise<void> {
    await this.commit(channelId, requestId, 0n);
  }

  /** Refuses new reservations; undefined when the channel has no live state. */
  async markClosing(channelId: string): Promise<{ accepted: bigint; spent: bigint; reserved: bigint; deposit: bigint } | undefined> {
    const result = await this.redis.channelMarkClosing(this.key(channelId));
    if (result.length === 0) return undefined;
    const [accepted, spent, reserved, deposit] = result;
    return { accepted: BigInt(accepted!), spent: BigInt(spent!), reserved: BigInt(reserved!), deposit: BigInt(deposit!) };
  }

  /** Counts one voucher against the channel's per-second limit; false when over it. */
  async withinVoucherRate(channelId: string, perSecond: number): Promise<boolean> {
    const bucket = `${this.key(channelId)}:rate:${Math.floor(Date.now() / 1000)}`;
    return (await this.redis.channelRate(bucket, String(perSecond))) === 1;
  }
}

/** The process's `ChannelBalances` on its own Redis connection (closed on shutdown). */
@Injectable()
export class ChannelBalancesProvider extends ChannelBalances implements OnApplicationShutdown {
  private readonly connection: Redis;

  constructor(@Inject(CONFIG) config: Config) {
    const connection = new Redis(redisOptions(config.redis));
    super(connection, config.redis.namespace);
    this.connection = connection;
    this.connection.on("error", () => undefined);
  }

  async onApplicationShutdown() {
    await this.connection.quit().catch(() => undefined);
  }
}

@Module({})
export class ChannelBalancesModule {
  static forRoot(): DynamicModule {
    return {
      module: ChannelBalancesModule,
      global: true,
      providers: [{ provide: ChannelBalances, useClass: ChannelBalancesProvider }],
      exports: [ChannelBalances],
    };
  }
}
