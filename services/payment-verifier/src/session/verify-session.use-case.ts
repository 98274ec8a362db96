import { Inject, Injectable, type OnApplicationShutdown } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import {
  ChainRpcClient,
  channelEscrowAbi,
  createTempoClients,
  decodeTempoTransaction,
  JsonRpcError,
  recoverSender,
  SignatureError,
  TempoTransactionError,
  type TempoPublicClient,
  type TempoTransaction,
} from "@worldrouter/chain";
import type { SessionCredentialRequest, SessionCredentialResult } from "@worldrouter/contracts";
import { findEscrowOpens, primeEscrowForOpenTransaction } from "@worldrouter/devchain";
import { paymentProblem, PaymentErrors } from "@worldrouter/mpp";
import { counter, type Logger } from "@worldrouter/observability";
import { ChannelBalances, CONFIG, Lease, LOGGER, METRICS, MoneyEventPublisher, redisOptions } from "@worldrouter/runtime";
import { Redis } from "ioredis";
import { Session } from "mppx/tempo";
import type { Counter, Registry } from "prom-client";
import { decodeFunctionData } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { FeeSponsor, type SponsoredTransaction } from "../charge/fee-sponsor.js";
import { RedisReplayStore } from "../charge/replay-store.js";
import { paymentInProgress, RetryLaterError } from "../charge/retry-later.js";
import { type ChannelDescriptor, ChannelsRepository } from "./channels.repository.js";
import {
  channelIdOf,
  MAX_CHANNEL_AMOUNT,
  normalizeDescriptor,
  parseSessionCredential,
  type SessionPayload,
  voucherSignerOf,
  ZERO_ADDRESS,
} from "./session-credential.js";
import { VoucherSigner } from "./voucher-signature.js";

type Hex = `0x${string}`;
type Payload<A extends SessionPayload["action"]> = Extract<SessionPayload, { action: A }>;
type OnChainChannel = { settled: bigint; deposit: bigint; closeRequestedAt: number };
type Accepted = Extract<SessionCredentialResult, { ok: true }>;

/** On-chain state older than this is read again before a voucher is accepted (a top-up or close request elsewhere). */
const CHAIN_STATE_TTL_MS = 5_000;
/** How long a close waits for the requests still spending on the channel to commit (a closing channel refuses more). */
const CLOSE_DRAIN_MS = 30_000;
/** Every payee transaction on a channel (settle, close) holds this lease: one at a time, so they cannot race. */
export const channelTxLeaseName = (channelId: string) => `channel-tx:${channelId}`;
const CHANNEL_TX_LEASE_MS = 120_000;

/**
 * Session credentials (TIP-1034 channels): `open` (verify, co-sign as fee payer, broadcast, read the channel from the
 * chain, record it with its first voucher), `voucher` (the spec's voucher rules, one native signature recovery, the
 * voucher persisted before it is usable), `topUp` (broadcast, re-read the deposit). Every accepted voucher raises the
 * channel's live balance in Redis (`ChannelBalances`) that the gateways spend from.
 */
@Injectable()
export class VerifySessionUseCase implements OnApplicationShutdown {
  private readonly chain: ChainRpcClient;
  private readonly publicClient: TempoPublicClient;
  private readonly sponsor: FeeSponsor | undefined;
  private readonly signer: VoucherSigner;
  private readonly outcomes: Counter<"action" | "outcome">;
  /** Dev only: the local escrow stand-in needs each open primed (tools/devchain); never with production config. */
  private readonly primeOpens: boolean;
  private readonly leases: Redis;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(ChannelsRepository) private readonly channels: ChannelsRepository,
    @Inject(ChannelBalances) private readonly balances: ChannelBalances,
    @Inject(RedisReplayStore) private readonly claims: RedisReplayStore,
    @Inject(MoneyEventPublisher) private readonly moneyEvents: MoneyEventPublisher,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) metrics: Registry,
  ) {
    const { chain } = config;
    this.chain = new ChainRpcClient({ url: chain.rpcUrl, timeoutMs: chain.rpcTimeoutMs });
    this.publicClient = createTempoClients({
      rpcUrl: chain.rpcUrl,
      chainId: chain.chainId,
      feeToken: chain.token,
      timeoutMs: chain.rpcTimeoutMs,
    }).publicClient;
    this.sponsor = chain.feePayerPrivateKey ? new FeeSponsor(chain.feePayerPrivateKey, chain.token, config.sponsor.maxInFlight) : undefined;
    this.signer = new VoucherSigner(chain.escrow, chain.chainId);
    this.primeOpens = primesEscrowOpens(config);
    this.leases = new Redis(redisOptions(config.redis.url));
    this.leases.on("error", () => undefined);
    this.outcomes = counter(metrics, "wr_session_credentials_total", "Session credentials by action and outcome", ["action", "outcome"]);
  }

  async onApplicationShutdown() {
    await this.chain.close();
    this.leases.disconnect();
  }

  async verify(request: SessionCredentialRequest): Promise<SessionCredentialResult> {
    let action = "unknown";
    try {
      const { challenge, payload } = parseSessionCredential(request.authorization, this.config);
      action = payload.action;
      const result = await this.apply(challenge.id, challenge.expires, payload, request);
      this.outcomes.inc({ action, outcome: "accepted" });
      return result;
    } catch (err) {
      if (err instanceof RetryLaterError) {
        this.outcomes.inc({ action, outcome: err.outcome });
        return { ok: false, problem: err.problem };
      }
      if (err instanceof InsufficientDepositError) {
        this.outcomes.inc({ action, outcome: "insufficient-balance" });
        return { ok: false, problem: { ...paymentProblem(err.error), requiredTopUp: err.requiredTopUp.toString() } };
      }
      if (err instanceof PaymentErrors.PaymentError) {
        this.outcomes.inc({ action, outcome: err.type.split("/").pop()! });
        this.logger.info({ requestId: request.requestId, action, problem: err.type, detail: err.message }, "session credential rejected");
        return { ok: false, problem: paymentProblem(err) };
      }
      this.outcomes.inc({ action, outcome: "internal-error" });
      this.logger.error({ requestId: request.requestId, action, err }, "session credential failed unexpectedly");
      return {
        ok: false,
        problem: paymentProblem(
          new PaymentErrors.VerificationFailedError({ reason: `the credential could not be verified: ${(err as Error).message}` }),
        ),
      };
    }
  }

  private apply(
    challengeId: string,
    expires: string | undefined,
    payload: SessionPayload,
    request: SessionCredentialRequest,
  ): Promise<Accepted> {
    switch (payload.action) {
      case "open":
        return this.open(challengeId, Date.parse(expires ?? "") || Date.now() + 60_000, payload, request.requestId);
      case "voucher":
        return this.voucher(challengeId, payload);
      case "topUp":
        return this.topUp(challengeId, payload);
      case "close":
        return this.close(challengeId, payload);
      default:
        payload satisfies never;
        throw new PaymentErrors.InvalidPayloadError();
    }
  }

  private async open(challengeId: string, claimUntil: number, payload: Payload<"open">, requestId: string): Promise<Accepted> {
    const { transaction, sender } = this.decodeClientTransaction(payload.transaction as Hex);
    const call = transaction.calls[0];
    if (transaction.calls.length !== 1 || call?.to?.toLowerCase() !== this.config.chain.escrow)
      throw new PaymentErrors.InvalidPayloadError({ reason: "the open transaction must make exactly one call: open on the escrow" });
    const sponsored = this.coSign(transaction, sender);
    const [open, ...more] = findEscrowOpens(sponsored.serialized, this.config.chain.escrow);
    if (!open || more.length > 0)
      throw new PaymentErrors.InvalidPayloadError({ reason: "the transaction does not open exactly one channel" });
    const descriptor = normalizeDescriptor(open.descriptor)!;
    const { payee, token } = this.config.chain;
    if (descriptor.payee !== payee || descriptor.token !== token)
      throw new PaymentErrors.InvalidPayloadError({ reason: `the channel must pay ${payee} in ${token}` });
    if (descriptor.operator !== ZERO_ADDRESS)
      throw new PaymentErrors.InvalidPayloadError({ reason: "channels with an operator are not accepted" });
    if (open.deposit < this.config.session.minDeposit)
      throw new PaymentErrors.PaymentInsufficientError({
        reason: `the deposit ${open.deposit} is below the minimum deposit of ${this.config.session.minDeposit} base units`,
      });
    if (open.deposit > MAX_CHANNEL_AMOUNT)
      throw new PaymentErrors.InvalidPayloadError({ reason: `deposits above ${MAX_CHANNEL_AMOUNT} are not accepted` });
    const channelId = channelIdOf(descriptor, this.config);
    if (payload.channelId.toLowerCase() !== channelId)
      throw new PaymentErrors.InvalidPayloadError({
        reason: `channelId ${payload.channelId} is not the id of the channel this transaction opens (${channelId})`,
      });
    const claimed = normalizeDescriptor(payload.descriptor);
    if (payload.descriptor !== undefined && (!claimed || channelIdOf(claimed, this.config) !== channelId))
      throw new PaymentErrors.InvalidPayloadError({ reason: "the descriptor does not match the open transaction" });
    const cumulativeAmount = BigInt(payload.cumulativeAmount);
    if (cumulativeAmount > open.deposit)
      throw new PaymentErrors.AmountExceedsDepositError({ reason: `voucher ${cumulativeAmount} exceeds the deposit ${open.deposit}` });
    this.assertVoucherSignature(channelId, cumulativeAmount, payload.signature as Hex, descriptor);

    // A retry of an open that went through (its answer was lost): the channel is there, the voucher applies to it.
    const existing = await this.channels.byId(channelId);
    if (existing) return this.acceptVoucher(challengeId, channelId, cumulativeAmount, payload.signature as Hex, "open");

    const claimKey = `session:open:${channelId}`;
    if ((await this.claims.tryClaimAll([claimKey], claimUntil, requestId)).length > 0) throw paymentInProgress(challengeId, 2);
    let receipt: Awaited<ReturnType<ChainRpcClient["sendRawTransactionSync"]>>;
    try {
      if (this.primeOpens)
        await primeEscrowForOpenTransaction(this.config.chain.rpcUrl, sponsored.serialized, { escrow: this.config.chain.escrow });
      receipt = await this.sponsor!.withBroadcastSlot(() => this.chain.sendRawTransactionSync(sponsored.serialized));
    } catch (err) {
      if (err instanceof JsonRpcError) {
        await this.claims.delete(claimKey);
        throw new PaymentErrors.VerificationFailedError({ reason: `the open transaction was refused: ${err.message}` });
      }
      throw err;
    }
    if (receipt.status !== "success") {
      await this.claims.delete(claimKey);
      throw new PaymentErrors.VerificationFailedError({ reason: `the open transaction ${receipt.transactionHash} reverted` });
    }
    const onChain = await this.readChannel(channelId);
    if (onChain.deposit === 0n) throw new PaymentErrors.VerificationFailedError({ reason: `channel ${channelId} is not open on chain` });
    await this.channels.insertOpened({
      id: channelId,
      chainId: this.config.chain.chainId,
      escrow: this.config.chain.escrow,
      descriptor,
      deposit: onChain.deposit,
      settled: onChain.settled,
      openTxHash: receipt.transactionHash.toLowerCase() as Hex,
      voucher: { cumulativeAmount, signature: payload.signature as Hex },
    });
    await this.balances.open(channelId, {
      accepted: cumulativeAmount,
      deposit: onChain.deposit,
      spent: 0n,
      closing: onChain.closeRequestedAt !== 0,
      payer: descriptor.payer,
      signer: voucherSignerOf(descriptor),
      readAt: Date.now(),
    });
    await this.publishDeposit(channelId, descriptor.payer, onChain.deposit, receipt.transactionHash);
    this.logger.info(
      { requestId, channelId, deposit: onChain.deposit.toString(), txHash: receipt.transactionHash },
      "session channel opened",
    );
    return {
      ok: true,
      action: "open",
      challengeId,
      channel: {
        channelId,
        payer: descriptor.payer,
        acceptedCumulative: cumulativeAmount.toString(),
        deposit: onChain.deposit.toString(),
        spent: "0",
      },
      txHash: receipt.transactionHash.toLowerCase() as Hex,
    };
  }

  private async voucher(challengeId: string, payload: Payload<"voucher">): Promise<Accepted> {
    const channelId = payload.channelId.toLowerCase() as Hex;
    const claimed = normalizeDescriptor(payload.descriptor);
    if (payload.descriptor !== undefined && (!claimed || channelIdOf(claimed, this.config) !== channelId))
      throw new PaymentErrors.InvalidPayloadError({ reason: "the descriptor does not match the channel id" });
    return this.acceptVoucher(challengeId, channelId, BigInt(payload.cumulativeAmount), payload.signature as Hex, "voucher");
  }

  /** The voucher rules, in the order that keeps rejected vouchers cheap; the voucher is durable before it is usable. */
  private async acceptVoucher(
    challengeId: string,
    channelId: Hex,
    cumulativeAmount: bigint,
    signature: Hex,
    action: "open" | "voucher",
  ): Promise<Accepted> {
    let live = await this.liveBalance(channelId);
    if (!(await this.balances.withinVoucherRate(channelId, this.config.session.vouchersPerSecond)))
      throw new RetryLaterError({
        type: "https://worldrouter.dev/problems/voucher-rate-limited",
        title: "Too Many Vouchers",
        status: 429,
        detail: `at most ${this.config.session.vouchersPerSecond} vouchers per second per channel; send it again after Retry-After`,
        retryAfter: 1,
      });
    if (Date.now() - live.readAt > CHAIN_STATE_TTL_MS || cumulativeAmount > live.deposit)
      live = await this.refreshFromChain(channelId, live);
    if (live.closing) throw new PaymentErrors.ChannelClosedError({ reason: "a close of this channel was requested: no more vouchers" });
    if (cumulativeAmount < live.accepted)
      throw new PaymentErrors.VerificationFailedError({
        reason: `voucher ${cumulativeAmount} is below the accepted cumulative ${live.accepted}`,
      });
    if (cumulativeAmount > live.deposit)
      throw new InsufficientDepositError(
        new PaymentErrors.AmountExceedsDepositError({ reason: `voucher ${cumulativeAmount} exceeds the deposit ${live.deposit}` }),
        cumulativeAmount - live.deposit,
      );
    this.assertVoucherSignature(channelId, cumulativeAmount, signature, { payer: live.payer as Hex, authorizedSigner: live.signer as Hex });
    if (cumulativeAmount > live.accepted) {
      const delta = cumulativeAmount - live.accepted;
      if (delta < this.config.session.minVoucherDelta)
        throw new PaymentErrors.DeltaTooSmallError({
          reason: `voucher delta ${delta} below minimum ${this.config.session.minVoucherDelta}`,
        });
      const accepted = await this.channels.acceptVoucher(channelId, cumulativeAmount, signature, live.deposit);
      if (accepted === undefined) throw new PaymentErrors.ChannelNotFoundError({ reason: `channel ${channelId} is not known here` });
      await this.balances.accept(channelId, { accepted });
    }
    const after = (await this.balances.get(channelId))!;
    return {
      ok: true,
      action,
      challengeId,
      channel: {
        channelId,
        payer: after.payer as Hex,
        acceptedCumulative: after.accepted.toString(),
        deposit: after.deposit.toString(),
        spent: after.spent.toString(),
      },
    };
  }

  private async topUp(challengeId: string, payload: Payload<"topUp">): Promise<Accepted> {
    const channelId = payload.channelId.toLowerCase() as Hex;
    const live = await this.liveBalance(channelId);
    const { transaction, sender } = this.decodeClientTransaction(payload.transaction as Hex);
    const call = transaction.calls[0];
    if (transaction.calls.length !== 1 || call?.to?.toLowerCase() !== this.config.chain.escrow || !call.data)
      throw new PaymentErrors.InvalidPayloadError({ reason: "the top-up transaction must make exactly one call: topUp on the escrow" });
    let decoded: ReturnType<typeof decodeFunctionData<typeof channelEscrowAbi>>;
    try {
      decoded = decodeFunctionData({ abi: channelEscrowAbi, data: call.data });
    } catch {
      throw new PaymentErrors.InvalidPayloadError({ reason: "the call is not an escrow function" });
    }
    if (decoded.functionName !== "topUp")
      throw new PaymentErrors.InvalidPayloadError({ reason: `expected topUp, got ${decoded.functionName}` });
    const [descriptorArg, additional] = decoded.args as unknown as [ChannelDescriptor, bigint];
    const descriptor = normalizeDescriptor(descriptorArg);
    if (!descriptor || channelIdOf(descriptor, this.config) !== channelId || descriptor.payer !== sender)
      throw new PaymentErrors.InvalidPayloadError({ reason: "the top-up is not for this channel, or not sent by its payer" });
    if (live.deposit + additional > MAX_CHANNEL_AMOUNT)
      throw new PaymentErrors.InvalidPayloadError({ reason: `deposits above ${MAX_CHANNEL_AMOUNT} are not accepted` });
    const sponsored = this.coSign(transaction, sender);
    let receipt: Awaited<ReturnType<ChainRpcClient["sendRawTransactionSync"]>>;
    try {
      receipt = await this.sponsor!.withBroadcastSlot(() => this.chain.sendRawTransactionSync(sponsored.serialized));
    } catch (err) {
      if (err instanceof JsonRpcError)
        throw new PaymentErrors.VerificationFailedError({ reason: `the top-up transaction was refused: ${err.message}` });
      throw err;
    }
    if (receipt.status !== "success")
      throw new PaymentErrors.VerificationFailedError({ reason: `the top-up transaction ${receipt.transactionHash} reverted` });
    await this.publishDeposit(channelId, sender, additional, receipt.transactionHash);
    const onChain = await this.readChannel(channelId);
    const deposit = (await this.channels.raiseDeposit(channelId, onChain.deposit)) ?? onChain.deposit;
    await this.balances.accept(channelId, { deposit, readAt: Date.now() });
    const after = (await this.balances.get(channelId))!;
    this.logger.info({ channelId, deposit: deposit.toString(), txHash: receipt.transactionHash }, "session channel topped up");
    return {
      ok: true,
      action: "topUp",
      challengeId,
      channel: {
        channelId,
        payer: after.payer as Hex,
        acceptedCumulative: after.accepted.toString(),
        deposit: after.deposit.toString(),
        spent: after.spent.toString(),
      },
      txHash: receipt.transactionHash.toLowerCase() as Hex,
    };
  }

  /**
   * Cooperative close: the channel stops taking new spending, the requests still running commit, then the payee
   * closes on-chain capturing max(spent, settled) — never more than was consumed — and the rest of the deposit goes
   * back to the payer. Under the channel's transaction lease, so a settle in flight finishes first and is seen.
   */
  private async close(challengeId: string, payload: Payload<"close">): Promise<Accepted> {
    const channelId = payload.channelId.toLowerCase() as Hex;
    const row = await this.channels.byId(channelId);
    if (!row) throw new PaymentErrors.ChannelNotFoundError({ reason: `channel ${channelId} is not known here` });
    const cumulativeAmount = BigInt(payload.cumulativeAmount);
    const signature = payload.signature as Hex;
    if (row.status === "closed") {
      const txHash = await this.channels.closeTxHash(channelId);
      if (row.acceptedCumulative === cumulativeAmount && txHash)
        return this.closedResult(challengeId, channelId, row.descriptor.payer, cumulativeAmount, row.spent, row.deposit, txHash);
      throw new PaymentErrors.ChannelClosedError({ reason: `channel ${channelId} is closed` });
    }
    this.assertVoucherSignature(channelId, cumulativeAmount, signature, row.descriptor);
    const live = await this.liveBalance(channelId);
    if (cumulativeAmount < live.accepted)
      throw new PaymentErrors.VerificationFailedError({
        reason: `close amount ${cumulativeAmount} is below the accepted cumulative ${live.accepted}`,
      });
    if (cumulativeAmount > live.deposit)
      throw new PaymentErrors.AmountExceedsDepositError({ reason: `close amount ${cumulativeAmount} exceeds the deposit ${live.deposit}` });
    const payee = this.config.chain.payeePrivateKey;
    if (!payee) throw new PaymentErrors.VerificationFailedError({ reason: "channels cannot be closed here: no payee key is configured" });

    const lease = new Lease(this.leases, this.config.redis.namespace, channelTxLeaseName(channelId), CHANNEL_TX_LEASE_MS);
    return lease.withLease(CHANNEL_TX_LEASE_MS, async () => {
      await this.channels.markClosing(channelId);
      let drained = await this.balances.markClosing(channelId);
      const deadline = Date.now() + CLOSE_DRAIN_MS;
      while (drained && drained.reserved > 0n && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        drained = await this.balances.markClosing(channelId);
      }
      const spent = drained?.spent ?? row.spent;
      const onChain = await this.readChannel(channelId);
      if (onChain.deposit === 0n) throw new PaymentErrors.ChannelClosedError({ reason: `channel ${channelId} is already closed on chain` });
      let capture = onChain.settled;
      if (spent > capture) capture = spent;
      const wallet = createTempoClients({
        rpcUrl: this.config.chain.rpcUrl,
        chainId: this.config.chain.chainId,
        feeToken: this.config.chain.token,
      }).walletClientFor(privateKeyToAccount(payee));
      const txHash = (await Session.Precompile.Chain.closeOnChain(
        wallet as never,
        row.descriptor,
        cumulativeAmount,
        capture,
        signature,
        this.config.chain.escrow,
      )) as Hex;
      const receipt = await this.publicClient.waitForTransactionReceipt({ hash: txHash, timeout: this.config.chain.rpcTimeoutMs });
      if (receipt.status !== "success")
        throw new PaymentErrors.VerificationFailedError({ reason: `the close transaction ${txHash} reverted` });
      const closeTx = txHash.toLowerCase() as Hex;
      await this.channels.recordClosed(channelId, { cumulativeAmount, signature, txHash: closeTx, captured: capture });
      await this.moneyEvents.publish({
        kind: "session.settled",
        channelId,
        payer: row.descriptor.payer,
        token: this.config.chain.token,
        chainId: this.config.chain.chainId,
        close: true,
        captured: (capture - onChain.settled).toString(),
        returned: (onChain.deposit - capture).toString(),
        settledCumulative: capture.toString(),
        txHash: closeTx,
        blockNumber: receipt.blockNumber.toString(),
        settledAt: Date.now(),
      });
      this.logger.info(
        { channelId, capture: capture.toString(), returned: (onChain.deposit - capture).toString(), txHash },
        "session channel closed",
      );
      return this.closedResult(challengeId, channelId, row.descriptor.payer, cumulativeAmount, spent, onChain.deposit, closeTx);
    });
  }

  private closedResult(
    challengeId: string,
    channelId: Hex,
    payer: Hex,
    closeAmount: bigint,
    spent: bigint,
    deposit: bigint,
    txHash: Hex,
  ): Accepted {
    return {
      ok: true,
      action: "close",
      challengeId,
      // mppx checks a close receipt: acceptedCumulative is the signed close amount, spent at most that.
      channel: { channelId, payer, acceptedCumulative: closeAmount.toString(), deposit: deposit.toString(), spent: spent.toString() },
      txHash,
    };
  }

  private async publishDeposit(channelId: Hex, payer: Hex, amount: bigint, txHash: Hex): Promise<void> {
    await this.moneyEvents.publish({
      kind: "session.deposited",
      channelId,
      payer,
      token: this.config.chain.token,
      chainId: this.config.chain.chainId,
      amount: amount.toString(),
      txHash: txHash.toLowerCase() as Hex,
      depositedAt: Date.now(),
    });
  }

  /** The channel's live balance; loaded from Postgres into Redis when Redis has none (a flushed or new Redis). */
  private async liveBalance(channelId: Hex) {
    const live = await this.balances.get(channelId);
    if (live) return live;
    const row = await this.channels.byId(channelId);
    if (!row) throw new PaymentErrors.ChannelNotFoundError({ reason: `channel ${channelId} is not known here` });
    if (row.status === "closed") throw new PaymentErrors.ChannelClosedError({ reason: `channel ${channelId} is closed` });
    await this.balances.open(channelId, {
      accepted: row.acceptedCumulative,
      deposit: row.deposit,
      spent: row.spent,
      closing: row.status === "closing" || row.closeRequestedAt !== null,
      payer: row.descriptor.payer,
      signer: voucherSignerOf(row.descriptor),
      readAt: 0,
    });
    return (await this.balances.get(channelId))!;
  }

  private async refreshFromChain(channelId: Hex, live: NonNullable<Awaited<ReturnType<ChannelBalances["get"]>>>) {
    const onChain = await this.readChannel(channelId);
    if (onChain.deposit === 0n) throw new PaymentErrors.ChannelClosedError({ reason: `channel ${channelId} is closed on chain` });
    if (onChain.deposit > live.deposit) await this.channels.raiseDeposit(channelId, onChain.deposit);
    await this.balances.accept(channelId, { deposit: onChain.deposit, readAt: Date.now(), closeRequested: onChain.closeRequestedAt !== 0 });
    return (await this.balances.get(channelId))!;
  }

  private async readChannel(channelId: Hex): Promise<OnChainChannel> {
    const state = (await this.publicClient.readContract({
      address: this.config.chain.escrow,
      abi: channelEscrowAbi,
      functionName: "getChannelState",
      args: [channelId],
    })) as { settled: bigint; deposit: bigint; closeRequestedAt: number };
    return { settled: state.settled, deposit: state.deposit, closeRequestedAt: Number(state.closeRequestedAt) };
  }

  private assertVoucherSignature(
    channelId: Hex,
    cumulativeAmount: bigint,
    signature: Hex,
    descriptor: Pick<ChannelDescriptor, "payer" | "authorizedSigner">,
  ) {
    let recovered: Hex;
    try {
      recovered = this.signer.recover(channelId, cumulativeAmount, signature);
    } catch (err) {
      if (err instanceof SignatureError)
        throw new PaymentErrors.InvalidSignatureError({ reason: `invalid voucher signature: ${err.message}` });
      throw err;
    }
    const expected = voucherSignerOf(descriptor);
    if (recovered !== expected)
      throw new PaymentErrors.SignerMismatchError({
        reason: `the voucher is signed by ${recovered}, not by the channel's signer ${expected}`,
      });
  }

  private decodeClientTransaction(serialized: Hex): { transaction: TempoTransaction; sender: Hex } {
    if (!this.sponsor)
      throw new PaymentErrors.VerificationFailedError({
        reason: "fee-sponsored channel transactions are unavailable: no fee payer is configured",
      });
    let transaction: TempoTransaction;
    try {
      transaction = decodeTempoTransaction(serialized);
    } catch (err) {
      if (err instanceof TempoTransactionError) throw new PaymentErrors.InvalidPayloadError({ reason: err.message });
      throw err;
    }
    let sender: Hex;
    try {
      sender = recoverSender(transaction);
    } catch (err) {
      if (err instanceof SignatureError)
        throw new PaymentErrors.VerificationFailedError({ reason: `the sender signature is invalid: ${err.message}` });
      throw err;
    }
    if (transaction.feePayer.kind === "sender" && transaction.feePayer.sender !== sender)
      throw new PaymentErrors.VerificationFailedError({
        reason: `the envelope names sender ${transaction.feePayer.sender}, but the signature is ${sender}'s`,
      });
    const { maxGas, maxFeePerGas, maxTotalFee } = this.config.sponsor;
    if (transaction.gas > maxGas || transaction.maxFeePerGas > maxFeePerGas || transaction.gas * transaction.maxFeePerGas > maxTotalFee)
      throw new PaymentErrors.VerificationFailedError({ reason: "the transaction's gas or fee is above what the fee payer sponsors" });
    return { transaction, sender };
  }

  private coSign(transaction: TempoTransaction, sender: Hex): SponsoredTransaction {
    return this.sponsor!.coSign(transaction, sender);
  }
}

/**
 * Whether opens are primed for the local escrow stand-in (tools/devchain `anvil_setStorageAt`): only with the local
 * world's chain in a non-production config. Production never loads a world file, so it never primes.
 */
export function primesEscrowOpens(config: Pick<Config, "env" | "chain">): boolean {
  return config.env !== "production" && config.chain.world !== undefined;
}

/** A voucher beyond the deposit: 402 `amount-exceeds-deposit` with the top-up it needs. */
class InsufficientDepositError extends Error {
  constructor(
    readonly error: PaymentErrors.PaymentError,
    readonly requiredTopUp: bigint,
  ) {
    super(error.message);
  }
}
