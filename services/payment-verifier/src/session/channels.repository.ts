import { Inject, Injectable } from "@nestjs/common";
import { PgPool } from "@worldrouter/db";

type Hex = `0x${string}`;

/** A channel's descriptor: with the escrow and chain id it determines the channel id. */
export interface ChannelDescriptor {
  payer: Hex;
  payee: Hex;
  operator: Hex;
  token: Hex;
  salt: Hex;
  authorizedSigner: Hex;
  expiringNonceHash: Hex;
}

export interface ChannelRow {
  id: Hex;
  descriptor: ChannelDescriptor;
  deposit: bigint;
  acceptedCumulative: bigint;
  spent: bigint;
  settledCumulative: bigint;
  status: "open" | "closing" | "closed";
  closeRequestedAt: Date | null;
}

export interface OpenedChannel {
  id: Hex;
  chainId: number;
  escrow: Hex;
  descriptor: ChannelDescriptor;
  deposit: bigint;
  settled: bigint;
  openTxHash: Hex;
  voucher: { cumulativeAmount: bigint; signature: Hex };
}

const COLUMNS = `"id", "payer", "payee", "operator", "token", "salt", "authorizedSigner", "expiringNonceHash",
  "deposit"::text AS "deposit", "acceptedCumulative"::text AS "acceptedCumulative", "spent"::text AS "spent",
  "settledCumulative"::text AS "settledCumulative", "status", "closeRequestedAt"`;

/** The channel and its first voucher, in one statement; a second open of the same channel inserts nothing. */
const INSERT_OPENED = `
WITH channel AS (
  INSERT INTO "channels" ("id", "chainId", "escrow", "payer", "payee", "operator", "token", "authorizedSigner", "salt",
    "expiringNonceHash", "deposit", "acceptedCumulative", "settledCumulative", "openTxHash", "updatedAt")
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::numeric, $12::numeric, $13::numeric, $14, now())
  ON CONFLICT DO NOTHING RETURNING "id")
INSERT INTO "vouchers" ("channelId", "cumulativeAmount", "signature")
SELECT "id", $12::numeric, $15 FROM channel WHERE $12::numeric > 0
ON CONFLICT DO NOTHING`;

/**
 * Raises the accepted cumulative to a higher voucher and logs the voucher, in one statement: concurrent vouchers on
 * several replicas serialise on the row, a lower or equal one changes nothing. Returns the accepted cumulative after.
 */
const ACCEPT_VOUCHER = `
WITH raised AS (
  UPDATE "channels" SET "acceptedCumulative" = $2::numeric, "deposit" = GREATEST("deposit", $4::numeric),
    "lastUsedAt" = now(), "updatedAt" = now()
  WHERE "id" = $1 AND "status" = 'open' AND "acceptedCumulative" < $2::numeric AND GREATEST("deposit", $4::numeric) >= $2::numeric
  RETURNING "id", "acceptedCumulative"),
logged AS (
  INSERT INTO "vouchers" ("channelId", "cumulativeAmount", "signature")
  SELECT "id", $2::numeric, $3 FROM raised ON CONFLICT DO NOTHING)
SELECT "acceptedCumulative"::text AS "accepted" FROM raised
UNION ALL
SELECT "acceptedCumulative"::text FROM "channels" WHERE "id" = $1 AND NOT EXISTS (SELECT 1 FROM raised)`;

const RAISE_DEPOSIT = `UPDATE "channels" SET "deposit" = GREATEST("deposit", $2::numeric), "lastUsedAt" = now(), "updatedAt" = now()
  WHERE "id" = $1 RETURNING "deposit"::text AS "deposit"`;

const MARK_CLOSING = `UPDATE "channels" SET "status" = 'closing', "updatedAt" = now() WHERE "id" = $1 AND "status" = 'open'`;

/** The close voucher is logged and the channel closed with its close transaction. */
const RECORD_CLOSED = `
WITH closed AS (
  UPDATE "channels" SET "status" = 'closed', "closeTxHash" = $4,
    "acceptedCumulative" = GREATEST("acceptedCumulative", $2::numeric), "settledCumulative" = GREATEST("settledCumulative", $5::numeric),
    "updatedAt" = now()
  WHERE "id" = $1 RETURNING "id")
INSERT INTO "vouchers" ("channelId", "cumulativeAmount", "signature")
SELECT "id", $2::numeric, $3 FROM closed ON CONFLICT DO NOTHING`;

/** payment-verifier's `channels` and `vouchers` statements (named, prepared, on the raw pool). */
@Injectable()
export class ChannelsRepository {
  constructor(@Inject(PgPool) private readonly pool: PgPool) {}

  async byId(id: Hex): Promise<ChannelRow | undefined> {
    const { rows } = await this.pool.query({
      name: "channel-by-id",
      text: `SELECT ${COLUMNS} FROM "channels" WHERE "id" = $1`,
      values: [id],
    });
    const row = rows[0];
    if (!row) return undefined;
    return {
      id: row.id,
      descriptor: {
        payer: row.payer,
        payee: row.payee,
        operator: row.operator,
        token: row.token,
        salt: row.salt,
        authorizedSigner: row.authorizedSigner,
        expiringNonceHash: row.expiringNonceHash,
      },
      deposit: BigInt(row.deposit),
      acceptedCumulative: BigInt(row.acceptedCumulative),
      spent: BigInt(row.spent),
      settledCumulative: BigInt(row.settledCumulative),
      status: row.status,
      closeRequestedAt: row.closeRequestedAt,
    };
  }

  async insertOpened(channel: OpenedChannel): Promise<void> {
    const d = channel.descriptor;
    await this.pool.query({
      name: "channel-insert-opened",
      text: INSERT_OPENED,
      values: [
        channel.id,
        channel.chainId,
        channel.escrow,
        d.payer,
        d.payee,
        d.operator,
        d.token,
        d.authorizedSigner,
        d.salt,
        d.expiringNonceHash,
        channel.deposit.toString(),
        channel.voucher.cumulativeAmount.toString(),
        channel.settled.toString(),
        channel.openTxHash,
        channel.voucher.signature,
      ],
    });
  }

  /** The accepted cumulative after this voucher (higher than before only if this one raised it); undefined: no such channel. */
  async acceptVoucher(id: Hex, cumulativeAmount: bigint, signature: Hex, deposit: bigint): Promise<bigint | undefined> {
    const { rows } = await this.pool.query({
      name: "channel-accept-voucher",
      text: ACCEPT_VOUCHER,
      values: [id, cumulativeAmount.toString(), signature, deposit.toString()],
    });
    return rows[0] ? BigInt(rows[0].accepted) : undefined;
  }

  async raiseDeposit(id: Hex, deposit: bigint): Promise<bigint | undefined> {
    const { rows } = await this.pool.query({ name: "channel-raise-deposit", text: RAISE_DEPOSIT, values: [id, deposit.toString()] });
    return rows[0] ? BigInt(rows[0].deposit) : undefined;
  }

  async markClosing(id: Hex): Promise<void> {
    await this.pool.query({ name: "channel-mark-closing", text: MARK_CLOSING, values: [id] });
  }

  async recordClosed(id: Hex, close: { cumulativeAmount: bigint; signature: Hex; txHash: Hex; captured: bigint }): Promise<void> {
    await this.pool.query({
      name: "channel-record-closed",
      text: RECORD_CLOSED,
      values: [id, close.cumulativeAmount.toString(), close.signature, close.txHash, close.captured.toString()],
    });
  }

  async closeTxHash(id: Hex): Promise<Hex | undefined> {
    const { rows } = await this.pool.query({
      name: "channel-close-tx",
      text: `SELECT "closeTxHash" FROM "channels" WHERE "id" = $1`,
      values: [id],
    });
    return rows[0]?.closeTxHash ?? undefined;
  }
}
