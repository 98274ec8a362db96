import { Inject, Injectable } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import type { StreamMessage } from "@worldrouter/contracts";
import { bodyDigest, ChargeChallenger, paymentRequired } from "@worldrouter/mpp";
import { formatUsd } from "@worldrouter/pricing";
import { counter, histogram } from "@worldrouter/observability";
import { CONFIG, METRICS } from "@worldrouter/runtime";
import type { Counter, Histogram, Registry } from "prom-client";
import { problem, ProblemException } from "../http/problem.js";
import { InferenceRelay } from "../inference/inference-relay.js";
import { PaymentVerifierClient } from "../payment-verifier.client.js";
import type { ChatCompletionRequest } from "./chat-request.js";
import { PRICE_RULE, QuoteRequest, type Quote } from "./quote-request.js";

export interface ChargeCompletionCommand {
  requestId: string;
  request: ChatCompletionRequest;
  rawBody: Buffer;
  /** The client as the rate limits see it: bounds its share of the token-counting queue. */
  client: string | undefined;
  authorization: string | undefined;
  /** A signal aborted when the client goes away (cancels the inference); only asked for once paid. */
  clientGone: () => AbortSignal;
}

export interface PaidCompletion {
  receipt: string;
  /** Milliseconds spent pricing the request and having the payment verified (RPC incl. chain), for `Server-Timing`. */
  timing: { quoteMs: number; verifyMs: number };
  payer: string;
  quote: Quote;
  stream: boolean;
  messages: AsyncIterable<StreamMessage>;
}

/**
 * Charge intent: price the prompt, answer 402 with a challenge bound to this exact body, or have the
 * verifier settle the credential and start the inference.
 */
@Injectable()
export class ChargeCompletion {
  private readonly phase: Histogram<"phase">;
  private readonly outcomes: Counter<"outcome">;
  private readonly challenger: ChargeChallenger;

  constructor(
    @Inject(METRICS) metrics: Registry,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(QuoteRequest) private readonly quoter: QuoteRequest,
    @Inject(PaymentVerifierClient) private readonly verifier: PaymentVerifierClient,
    @Inject(InferenceRelay) private readonly relay: InferenceRelay,
  ) {
    this.phase = histogram(
      metrics,
      "wr_charge_phase_ms",
      "Charge request phases in the gateway: quote (validate+count+price), verify (RPC to payment-verifier incl. chain)",
      ["phase"],
    );
    this.challenger = new ChargeChallenger({
      secretKey: config.mpp.secretKey,
      realm: config.gateway.realm,
      currency: config.chain.token,
      recipient: config.chain.payee!,
      chainId: config.chain.chainId,
      feePayer: true,
    });
    this.outcomes = counter(
      metrics,
      "wr_charge_requests_total",
      "Charge requests: challenged (402 without credential), rejected (credential refused), failed (paid but not servable), paid",
      ["outcome"],
    );
  }

  async execute(command: ChargeCompletionCommand): Promise<PaidCompletion> {
    const quoting = performance.now();
    const digest = bodyDigest(command.rawBody);
    const quote = await this.quoter.quoteBody(command.request, digest, command.client);
    const quoteMs = performance.now() - quoting;
    this.phase.observe({ phase: "quote" }, quoteMs);
    if (!command.authorization || !/^Payment\s/i.test(command.authorization)) {
      this.outcomes.inc({ outcome: "challenged" });
      throw this.paymentRequired(quote, digest);
    }

    const verifying = performance.now();
    const verified = await this.verifier
      .verifyPayment({
        requestId: command.requestId,
        authorization: command.authorization,
        bodyDigest: digest,
        amount: quote.amount.toString(),
        model: quote.model.id,
      })
      .catch((err: unknown) => {
        throw new ProblemException(
          problem(
            504,
            "payment-verification-timeout",
            "Payment Verification Timed Out",
            `the payment could not be verified in time (${(err as Error).message}); if it settled on-chain it is refunded automatically, so do not pay again for this challenge`,
          ),
          { "cache-control": "no-store" },
          { type: "server_error", code: "payment_verification_timeout" },
        );
      });
    const verifyMs = performance.now() - verifying;
    this.phase.observe({ phase: "verify" }, verifyMs);
    if (!verified.ok) {
      // Anything but a refused payment (the payment may have moved, or may still be moving: its outcome pending, the
      // same credential in flight, the sponsor's budget used up): no new challenge, which mppx would pay at once; the
      // client sends the same credential again after Retry-After.
      if (verified.problem.status !== 402) {
        this.outcomes.inc({ outcome: "failed" });
        const { retryAfter, ...body } = verified.problem;
        throw new ProblemException(
          body,
          { "cache-control": "no-store", ...(retryAfter ? { "retry-after": String(retryAfter) } : {}) },
          {
            type: verified.problem.status === 429 ? "rate_limit_error" : "server_error",
            code: verified.problem.type.split("/").pop() ?? null,
          },
        );
      }
      this.outcomes.inc({ outcome: "rejected" });
      throw this.paymentRequired(quote, digest, verified.problem);
    }
    this.outcomes.inc({ outcome: "paid" });

    const stream = command.request.stream === true;
    const messages = this.relay.run(
      {
        requestId: command.requestId,
        model: quote.model.id,
        intent: "charge",
        payer: verified.payer,
        body: withCompletionLimit(command.request, quote.completionLimit),
        stream,
        promptTokens: quote.promptTokens,
        estimatedCost: quote.estimate.toString(),
        chargedCost: quote.amount.toString(),
        chargePaymentId: verified.paymentId,
      },
      command.clientGone(),
    );
    return { receipt: verified.receipt, timing: { quoteMs, verifyMs }, payer: verified.payer, quote, stream, messages };
  }

  /** 402 with a fresh challenge; `rejection` explains why a presented credential was refused. */
  private paymentRequired(
    quote: Quote,
    digest: string,
    rejection?: { type: string; title: string; status: number; detail: string },
  ): ProblemException {
    const { config } = this;
    const choices = quote.choices > 1 ? `${quote.choices} × ` : "";
    const price = `${formatUsd(quote.amount)} in USDC.e for ${quote.promptTokens} prompt tokens and up to ${choices}${quote.completionLimit} completion tokens of ${quote.model.id} (a lower max_tokens pays less)`;
    const { challenge, header } = this.challenger.challenge({
      amount: quote.amount,
      digest,
      expiresAt: new Date(Date.now() + config.mpp.challengeTtlSeconds * 1000),
      description: price,
    });
    const body = rejection ?? paymentRequired(price);
    return new ProblemException(
      {
        ...body,
        challengeId: challenge.id,
        price: {
          amount: quote.amount.toString(),
          currency: config.chain.token,
          decimals: 6,
          usd: formatUsd(quote.amount),
          model: quote.model.id,
          promptTokens: quote.promptTokens,
          choices: quote.choices,
          completionLimit: quote.completionLimit,
          estimate: quote.estimate.toString(),
          rule: PRICE_RULE,
        },
      },
      { "www-authenticate": header, "cache-control": "no-store" },
      { type: "payment_required", code: body.type.split("/").pop() ?? "payment_required" },
    );
  }
}

/**
 * The body the provider is called with: its completion limit is the one priced. `max_completion_tokens` is what
 * every current OpenAI model takes (reasoning models refuse `max_tokens`) and what the Anthropic adapter reads first.
 */
export function withCompletionLimit(request: ChatCompletionRequest, limit: number): ChatCompletionRequest {
  const { max_tokens: _replaced, ...body } = request;
  return { ...body, max_completion_tokens: limit };
}
