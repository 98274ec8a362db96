import type { ServerResponse } from "node:http";
import { Inject, Injectable } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import type { ChannelSnapshot, StreamMessage } from "@worldrouter/contracts";
import { serializeSessionReceipt, sessionReceipt } from "@worldrouter/mpp";
import type { Logger } from "@worldrouter/observability";
import { countCompletionTokens, type Model, SessionMeter } from "@worldrouter/pricing";
import { ChannelBalances, CONFIG, LOGGER, MoneyEventPublisher } from "@worldrouter/runtime";

/** How often a paused stream looks for the voucher it asked for (any replica's verifier may accept it). */
const VOUCHER_POLL_MS = 25;

export interface MeteredRequest {
  requestId: string;
  challengeId: string;
  channel: ChannelSnapshot;
  model: Model;
  promptTokens: number;
}

/** What a request spent from its channel, and the receipt that says so. */
export interface SessionBill {
  spent: bigint;
  receipt: string;
}

type Outcome = "completed" | "voucher-timeout" | "channel-closing" | "client-gone" | "failed";

/**
 * Spends a session request's cost from its channel while it is served: reserve → commit → release on the channel's
 * live balance (`ChannelBalances`, Redis Lua), so concurrent requests on one channel never spend more than was
 * accepted. The prompt's cost is reserved before the inference starts; each chunk's cost is reserved before the chunk
 * is delivered (the reservation is in Redis first); when the balance runs short the SSE stream sends
 * `payment-need-voucher` and pauses until a voucher raises it, or ends after SESSION_VOUCHER_WAIT_MS. At the end the
 * request commits what it served (the provider's usage when it reported one) and its `session.spent` money event is
 * added before the receipt leaves.
 */
@Injectable()
export class MeteredSession {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(ChannelBalances) private readonly balances: ChannelBalances,
    @Inject(MoneyEventPublisher) private readonly moneyEvents: MoneyEventPublisher,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Non-streamed: the largest cost the request can reach is reserved up front; `undefined` with the shortfall
   * (base units) when the balance does not cover it.
   */
  async reserveUpFront(
    request: MeteredRequest,
    maxCompletionTokens: number,
  ): Promise<{ ok: true } | { ok: false; shortfall: bigint; closing: boolean }> {
    const meter = new SessionMeter(request.model, request.promptTokens);
    const amount = meter.costWith(maxCompletionTokens);
    const outcome = await this.balances.reserve(request.channel.channelId, request.requestId, amount);
    if (outcome.ok) return { ok: true };
    return {
      ok: false,
      shortfall: amount - (outcome.accepted - outcome.spent - outcome.reserved),
      closing: outcome.reason !== "insufficient",
    };
  }

  /** Non-streamed: bills the completion's usage (capped at the reservation) and returns the receipt. */
  async billCompletion(request: MeteredRequest, completion: string | undefined): Promise<SessionBill> {
    const meter = new SessionMeter(request.model, request.promptTokens);
    const usage = completion === undefined ? undefined : usageOf(JSON.parse(completion));
    if (usage) meter.setUsage(usage);
    return this.commit(request, completion === undefined ? 0n : meter.cost, usage?.completionTokens ?? 0);
  }

  /** Streams `messages` as metered SSE on `out` (headers already sent) and bills what was delivered. */
  async stream(
    request: MeteredRequest,
    maxCompletionTokens: number,
    out: ServerResponse,
    startInference: () => AsyncIterator<StreamMessage>,
    signal: AbortSignal,
  ): Promise<Outcome> {
    const meter = new SessionMeter(request.model, request.promptTokens);
    // The most this request can cost: vouchers are asked for up to it, so a stream needs few.
    const reservation = new Reservation(this.balances, this.config, request, out, signal, meter.costWith(maxCompletionTokens));
    let outcome: Outcome = "completed";
    let delivered = 0;
    let failedBeforeOutput = false;
    let finalUsage: Record<string, unknown> | undefined;
    let last: { id?: string; created?: number; model?: string } = {};

    const prompt = await reservation.reserveUpTo(meter.cost);
    if (prompt !== "reserved") outcome = prompt;
    else {
      const messages = startInference();
      try {
        for (;;) {
          const next = await messages.next();
          if (next.done) break;
          const message = next.value;
          if (message.type === "end") break;
          if (message.type === "error") {
            failedBeforeOutput = delivered === 0;
            out.write(`data: ${JSON.stringify({ error: { message: message.message, type: "server_error", code: message.code } })}\n\n`);
            outcome = "failed";
            break;
          }
          if (message.type !== "chunk") continue;
          const chunk = JSON.parse(message.data) as OpenAiChunk;
          last = { id: chunk.id, created: chunk.created, model: chunk.model };
          const choices = chunk.choices ?? [];
          if (choices.length === 0 && chunk.usage) {
            // The provider's own count: billed from it, and sent (with the cost) in our final chunk.
            const usage = usageOf(chunk);
            if (usage) meter.setUsage(usage);
            finalUsage = chunk.usage;
            continue;
          }
          const tokens = countCompletionTokens(request.model, textOf(choices));
          const reserved = await reservation.reserveUpTo(meter.costWith(tokens));
          if (reserved !== "reserved") {
            outcome = reserved;
            break;
          }
          meter.addCompletionTokens(tokens);
          delivered++;
          out.write(`data: ${message.data}\n\n`);
        }
      } finally {
        // Stops the inference when we stopped first (voucher timeout, client gone).
        await messages.return?.(undefined);
      }
    }
    if (signal.aborted && outcome === "completed") outcome = "client-gone";

    // Served nothing (the provider failed before any output, or the prompt was never paid for): nothing to bill.
    const cost = failedBeforeOutput || prompt !== "reserved" ? 0n : meter.cost;
    const bill = await this.commit(request, cost, meter.completionTokenCount, reservation.reservedTotal);
    if (outcome === "voucher-timeout")
      out.write(
        `data: ${JSON.stringify({
          error: {
            message: `no voucher arrived within ${this.config.session.voucherWaitMs} ms of payment-need-voucher; the stream ends here and only what was served is billed`,
            type: "payment_required",
            code: "voucher_timeout",
          },
        })}\n\n`,
      );
    if (outcome === "channel-closing")
      out.write(
        `data: ${JSON.stringify({ error: { message: "the channel is closing: no more spending on it", type: "payment_required", code: "channel_closing" } })}\n\n`,
      );
    if (!out.destroyed) {
      const completionTokens = meter.completionTokenCount;
      const usage = finalUsage ?? {
        prompt_tokens: request.promptTokens,
        completion_tokens: completionTokens,
        total_tokens: request.promptTokens + completionTokens,
      };
      out.write(
        `data: ${JSON.stringify({
          id: last.id ?? `chatcmpl-${request.requestId}`,
          object: "chat.completion.chunk",
          created: last.created ?? Math.floor(Date.now() / 1000),
          model: last.model ?? request.model.id,
          choices: [],
          usage,
          cost: { amount: bill.spent.toString(), currency: this.config.chain.token, decimals: 6, channelId: request.channel.channelId },
        })}\n\n`,
      );
      out.write(`event: payment-receipt\ndata: ${Buffer.from(bill.receipt, "base64url").toString("utf8")}\n\n`);
      out.end("data: [DONE]\n\n");
    }
    return outcome;
  }

  /** Commits `cost` of the request's reservation (never more than it holds), adds its money event, returns the receipt. */
  private async commit(request: MeteredRequest, cost: bigint, units: number, reservedTotal?: bigint): Promise<SessionBill> {
    const { channelId } = request.channel;
    const committed = await this.balances.commit(channelId, request.requestId, cost);
    if (reservedTotal !== undefined && committed.spentNow < cost)
      this.logger.warn(
        { requestId: request.requestId, channelId, cost: cost.toString(), reserved: reservedTotal.toString() },
        "session usage above its reservation",
      );
    if (committed.spentNow > 0n)
      await this.moneyEvents.publish({
        kind: "session.spent",
        channelId,
        requestId: request.requestId,
        payer: request.channel.payer,
        amount: committed.spentNow.toString(),
        spentAt: Date.now(),
      });
    const receipt = serializeSessionReceipt(
      sessionReceipt({
        challengeId: request.challengeId,
        channelId,
        acceptedCumulative: committed.accepted,
        spent: committed.spent,
        units,
      }),
    );
    return { spent: committed.spentNow, receipt };
  }
}

/** One request's growing reservation on its channel, pausing for vouchers when the balance runs short. */
class Reservation {
  reservedTotal = 0n;

  constructor(
    private readonly balances: ChannelBalances,
    private readonly config: Config,
    private readonly request: MeteredRequest,
    private readonly out: ServerResponse,
    private readonly signal: AbortSignal,
    private readonly maxCost: bigint,
  ) {}

  /** Grows the reservation to `target` base units; asks for a voucher and waits while the balance is short. */
  async reserveUpTo(target: bigint): Promise<"reserved" | "voucher-timeout" | "channel-closing" | "client-gone"> {
    const { channelId } = this.request.channel;
    let deadline: number | undefined;
    for (;;) {
      const need = target - this.reservedTotal;
      if (need <= 0n) return "reserved";
      const outcome = await this.balances.reserve(channelId, this.request.requestId, need);
      if (outcome.ok) {
        this.reservedTotal = target;
        return "reserved";
      }
      if (outcome.reason !== "insufficient") return "channel-closing";
      if (this.signal.aborted) return "client-gone";
      if (deadline === undefined) {
        deadline = Date.now() + this.config.session.voucherWaitMs;
        // Ask for enough to cover the rest of the request at its largest (rounded up once): one voucher per request
        // unless other requests on the channel spend in between. Never less than the shortfall or the minimum delta.
        const available = outcome.accepted - outcome.spent - outcome.reserved;
        let step = this.maxCost - this.reservedTotal - available;
        if (step < need - available) step = need - available;
        if (step < this.config.session.minVoucherDelta) step = this.config.session.minVoucherDelta;
        this.out.write(
          `event: payment-need-voucher\ndata: ${JSON.stringify({
            channelId,
            requiredCumulative: (outcome.accepted + step).toString(),
            acceptedCumulative: outcome.accepted.toString(),
            deposit: outcome.deposit.toString(),
          })}\n\n`,
        );
      }
      if (Date.now() >= deadline) return "voucher-timeout";
      await new Promise((resolve) => setTimeout(resolve, VOUCHER_POLL_MS));
    }
  }
}

interface OpenAiChunk {
  id?: string;
  created?: number;
  model?: string;
  choices?: {
    delta?: {
      content?: string | null;
      refusal?: string | null;
      reasoning_content?: string | null;
      tool_calls?: { function?: { name?: string; arguments?: string } }[];
    };
  }[];
  usage?: Record<string, unknown> & {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number };
  };
}

function textOf(choices: NonNullable<OpenAiChunk["choices"]>): string {
  let text = "";
  for (const choice of choices) {
    const delta = choice.delta;
    if (!delta) continue;
    text += (delta.content ?? "") + (delta.refusal ?? "") + (delta.reasoning_content ?? "");
    for (const call of delta.tool_calls ?? []) text += (call.function?.name ?? "") + (call.function?.arguments ?? "");
  }
  return text;
}

function usageOf(body: { usage?: OpenAiChunk["usage"] | null }) {
  const usage = body.usage;
  if (!usage || typeof usage.prompt_tokens !== "number" || typeof usage.completion_tokens !== "number") return undefined;
  return {
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
    cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
  };
}
