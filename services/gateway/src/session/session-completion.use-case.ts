import { Inject, Injectable } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import type { SessionCredentialResult, StreamMessage } from "@worldrouter/contracts";
import { paymentRequired, serializeSessionReceipt, SessionChallenger, sessionReceipt } from "@worldrouter/mpp";
import { counter } from "@worldrouter/observability";
import { formatUsd, pricePerOutputToken, type Model } from "@worldrouter/pricing";
import { CONFIG, METRICS } from "@worldrouter/runtime";
import type { Counter, Registry } from "prom-client";
import { withCompletionLimit } from "../chat/charge-completion.use-case.js";
import type { ChatCompletionRequest } from "../chat/chat-request.js";
import { QuoteRequest, type Quote } from "../chat/quote-request.js";
import { problem, ProblemException } from "../http/problem.js";
import { InferenceRelay } from "../inference/inference-relay.js";
import { PaymentVerifierClient } from "../payment-verifier.client.js";
import type { MeteredRequest } from "./metered-session.js";

type Accepted = Extract<SessionCredentialResult, { ok: true }>;

export interface SessionRequestCommand {
  requestId: string;
  request: ChatCompletionRequest;
  authorization: string | undefined;
}

/** A paid session request, ready to be served and metered. */
export interface PaidSessionRequest {
  metered: MeteredRequest;
  quote: Quote;
  stream: boolean;
  /** `Payment-Receipt` for the response headers (the channel as the request starts). */
  receipt: string;
  /** Starts the inference (on first `next()`): called once the prompt's cost is reserved. */
  startInference: (signal: AbortSignal) => AsyncGenerator<StreamMessage>;
}

/**
 * Session intent at the gateway: price the prompt and answer 402 with a session challenge, or have the verifier apply
 * the credential (open a channel or accept a voucher) and hand back a request to meter; management calls (voucher,
 * topUp, close without a body) answer 204 + receipt.
 */
@Injectable()
export class SessionCompletion {
  private readonly challenger: SessionChallenger;
  private readonly outcomes: Counter<"outcome">;

  constructor(
    @Inject(METRICS) metrics: Registry,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(QuoteRequest) private readonly quoter: QuoteRequest,
    @Inject(PaymentVerifierClient) private readonly verifier: PaymentVerifierClient,
    @Inject(InferenceRelay) private readonly relay: InferenceRelay,
  ) {
    this.challenger = new SessionChallenger({
      secretKey: config.mpp.secretKey,
      realm: config.gateway.realm,
      terms: {
        currency: config.chain.token,
        recipient: config.chain.payee!,
        chainId: config.chain.chainId,
        escrowContract: config.chain.escrow,
        minVoucherDelta: config.session.minVoucherDelta,
        suggestedDeposit: config.session.suggestedDeposit,
      },
    });
    this.outcomes = counter(
      metrics,
      "wr_session_requests_total",
      "Session requests: challenged, rejected, paid, managed (voucher/topUp/close)",
      ["outcome"],
    );
  }

  async execute(command: SessionRequestCommand): Promise<PaidSessionRequest> {
    const quote = await this.quoter.quote(command.request);
    if (!command.authorization || !/^Payment\s/i.test(command.authorization)) {
      this.outcomes.inc({ outcome: "challenged" });
      throw this.paymentRequired(quote.model);
    }
    const accepted = await this.applyCredential(command.requestId, command.authorization, false, quote.model);
    if (accepted.action !== "open" && accepted.action !== "voucher")
      throw new ProblemException(
        problem(
          400,
          "session-action-not-payable",
          "Not A Paying Credential",
          `a ${accepted.action} credential is sent without a body (HEAD or an empty POST)`,
        ),
      );
    this.outcomes.inc({ outcome: "paid" });
    const stream = command.request.stream === true;
    const metered: MeteredRequest = {
      requestId: command.requestId,
      challengeId: accepted.challengeId,
      channel: accepted.channel,
      model: quote.model,
      promptTokens: quote.promptTokens,
    };
    const body = withCompletionLimit(command.request, quote.completionLimit);
    const receipt = serializeSessionReceipt(
      sessionReceipt({
        challengeId: accepted.challengeId,
        channelId: accepted.channel.channelId,
        acceptedCumulative: BigInt(accepted.channel.acceptedCumulative),
        spent: BigInt(accepted.channel.spent),
        ...(accepted.txHash ? { txHash: accepted.txHash } : {}),
      }),
    );
    return {
      metered,
      quote,
      stream,
      receipt,
      startInference: (signal) =>
        this.relay.run(
          {
            requestId: command.requestId,
            model: quote.model.id,
            intent: "session",
            payer: accepted.channel.payer,
            // The provider's usage always comes back (the final chunk carries it, with the cost).
            body: stream ? { ...body, stream_options: { ...(body.stream_options as object | undefined), include_usage: true } } : body,
            stream,
            promptTokens: quote.promptTokens,
            estimatedCost: "0",
            chargedCost: "0",
            channelId: accepted.channel.channelId,
          },
          signal,
        ),
    };
  }

  /** A bodiless management call: the credential applied, answered 204 with its receipt. */
  async manage(requestId: string, authorization: string | undefined): Promise<string> {
    if (!authorization || !/^Payment\s/i.test(authorization))
      throw new ProblemException(
        problem(
          400,
          "credential-required",
          "Credential Required",
          "a session management call (HEAD or an empty POST) carries an Authorization: Payment credential",
        ),
      );
    const accepted = await this.applyCredential(requestId, authorization, true, undefined);
    this.outcomes.inc({ outcome: "managed" });
    return serializeSessionReceipt(
      sessionReceipt({
        challengeId: accepted.challengeId,
        channelId: accepted.channel.channelId,
        acceptedCumulative: BigInt(accepted.channel.acceptedCumulative),
        spent: BigInt(accepted.channel.spent),
        ...(accepted.txHash ? { txHash: accepted.txHash } : {}),
      }),
    );
  }

  /** 402 `session/insufficient-balance` for a request the channel's spendable balance cannot cover. */
  insufficientBalance(model: Model, shortfall: bigint): ProblemException {
    return this.paymentRequired(model, {
      type: "https://paymentauth.org/problems/session/insufficient-balance",
      title: "Insufficient Balance",
      status: 402,
      detail: `the channel's spendable balance is ${shortfall} base units short of this request's largest cost; send a higher voucher (top up the channel if its deposit is reached)`,
      requiredTopUp: shortfall.toString(),
    });
  }

  private async applyCredential(
    requestId: string,
    authorization: string,
    management: boolean,
    model: Model | undefined,
  ): Promise<Accepted> {
    const result = await this.verifier.sessionCredential({ requestId, authorization, management }).catch((err: unknown) => {
      throw new ProblemException(
        problem(
          504,
          "payment-verification-timeout",
          "Payment Verification Timed Out",
          `the credential could not be verified in time (${(err as Error).message})`,
        ),
        { "cache-control": "no-store" },
        { type: "server_error", code: "payment_verification_timeout" },
      );
    });
    if (result.ok) return result;
    this.outcomes.inc({ outcome: "rejected" });
    const { retryAfter, ...body } = result.problem;
    if (body.status === 402) throw this.paymentRequired(model, body);
    throw new ProblemException(
      body,
      { "cache-control": "no-store", ...(retryAfter ? { "retry-after": String(retryAfter) } : {}) },
      { type: body.status === 429 ? "rate_limit_error" : "invalid_request_error", code: body.type.split("/").pop() ?? null },
    );
  }

  /** 402 with a fresh session challenge; `rejection` explains why a presented credential was refused. */
  private paymentRequired(
    model: Model | undefined,
    rejection?: { type: string; title: string; status: number; detail: string; requiredTopUp?: string },
  ) {
    const amountPerUnit = model ? pricePerOutputToken(model) : 1n;
    const prices = model
      ? `${model.id}: ${model.prices.input.perMillion} base units per 1M prompt tokens, ${model.prices.output.perMillion} per 1M completion tokens, metered exactly and rounded up once per request`
      : "metered per token";
    const { challenge, header } = this.challenger.challenge({
      amountPerUnit,
      expiresAt: new Date(Date.now() + this.config.mpp.challengeTtlSeconds * 1000),
      description: `session in USDC.e (${prices}); suggested deposit ${formatUsd(this.config.session.suggestedDeposit)}`,
    });
    const body = rejection ?? paymentRequired(`open a payment channel: ${prices}`);
    return new ProblemException(
      {
        ...body,
        challengeId: challenge.id,
        ...(model
          ? {
              price: {
                unit: "llm_token",
                currency: this.config.chain.token,
                decimals: 6,
                model: model.id,
                inputPerMillion: model.prices.input.perMillion.toString(),
                outputPerMillion: model.prices.output.perMillion.toString(),
                minimumDeposit: this.config.session.minDeposit.toString(),
                suggestedDeposit: this.config.session.suggestedDeposit.toString(),
              },
            }
          : {}),
      },
      { "www-authenticate": header, "cache-control": "no-store" },
      { type: "payment_required", code: body.type.split("/").pop() ?? "payment_required" },
    );
  }
}
