import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import { CONFIG, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";

type Hex = `0x${string}`;

/** Gas is priced in attodollars (10⁻¹⁸ USD) per unit; the token's base unit is 10⁻⁶ USD. */
const ATTODOLLARS_PER_BASE_UNIT = 10n ** 12n;

/**
 * Both counters move together or not at all: +amount on the payer's and the global counter of this window, given
 * back at once if either passes its limit. Returns 0 (reserved), 1 (payer over budget) or 2 (global over budget).
 */
const RESERVE = `
local amount = tonumber(ARGV[1])
local payer = redis.call('INCRBY', KEYS[1], amount)
local global = redis.call('INCRBY', KEYS[2], amount)
if payer == amount then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
if global == amount then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
if payer > tonumber(ARGV[2]) or global > tonumber(ARGV[3]) then
  redis.call('DECRBY', KEYS[1], amount)
  redis.call('DECRBY', KEYS[2], amount)
  if payer > tonumber(ARGV[2]) then return 1 end
  return 2
end
return 0`;

export type BudgetReservation =
  | { ok: true; release: () => Promise<void> }
  | { ok: false; scope: "payer" | "global"; retryAfterSeconds: number };

/**
 * The sponsor's spend budget, shared by every verifier replica: the most gas (gas × maxFeePerGas of each co-signed
 * transaction, in token base units) one payer, and all payers together, may have the sponsor commit to per window
 * (SPONSOR_BUDGET_*). One Lua call per charge; the keys share a hash tag (one slot in a cluster).
 */
@Injectable()
export class SponsorBudget implements OnApplicationShutdown {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly windowMs: number;

  constructor(@Inject(CONFIG) private readonly config: Config) {
    this.redis = new Redis(redisOptions(config.redis));
    this.redis.defineCommand("reserveSponsorBudget", { numberOfKeys: 2, lua: RESERVE });
    this.prefix = `{${config.redis.namespace}:sponsor-budget}`;
    this.windowMs = config.sponsor.budget.windowSeconds * 1000;
  }

  /** The most a transaction can cost the sponsor, in token base units (rounded up). */
  static maxFee(gas: bigint, maxFeePerGas: bigint): bigint {
    return (gas * maxFeePerGas + ATTODOLLARS_PER_BASE_UNIT - 1n) / ATTODOLLARS_PER_BASE_UNIT;
  }

  async reserve(payer: Hex, amount: bigint, now = Date.now()): Promise<BudgetReservation> {
    const { perPayer, global } = this.config.sponsor.budget;
    const window = Math.floor(now / this.windowMs);
    const keys = [`${this.prefix}:${window}:payer:${payer.toLowerCase()}`, `${this.prefix}:${window}:global`] as const;
    const verdict = (await (
      this.redis as unknown as { reserveSponsorBudget: (...args: (string | number)[]) => Promise<number> }
    ).reserveSponsorBudget(...keys, amount.toString(), perPayer.toString(), global.toString(), this.windowMs * 2)) as number;
    if (verdict === 0) {
      return {
        ok: true,
        release: async () => {
          await this.redis.pipeline().decrby(keys[0], amount.toString()).decrby(keys[1], amount.toString()).exec();
        },
      };
    }
    const retryAfterSeconds = Math.max(1, Math.ceil(((window + 1) * this.windowMs - now) / 1000));
    return { ok: false, scope: verdict === 1 ? "payer" : "global", retryAfterSeconds };
  }

  async onApplicationShutdown() {
    this.redis.disconnect();
  }
}
