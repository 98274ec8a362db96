import { Controller, Headers, HttpCode, Inject, Post, Req, Res } from "@nestjs/common";
import type { Config } from "@worldrouter/config";
import type { StreamMessage } from "@worldrouter/contracts";
import { formatUsd } from "@worldrouter/pricing";
import { CONFIG } from "@worldrouter/runtime";
import type { FastifyReply, FastifyRequest } from "fastify";
import { problem, ProblemException } from "../http/problem.js";
import { parseChatCompletionRequest } from "./chat-request.js";
import { INFERENCE_REPLY_TIMEOUT } from "../inference/inference-relay.js";
import { ChargeCompletion, type PaidCompletion } from "./charge-completion.use-case.js";

/** HTTP edge of the charge intent; also served at `/v1/...` so any OpenAI SDK can point at the gateway. */
@Controller()
export class ChatCompletionsController {
  constructor(
    @Inject(ChargeCompletion) private readonly chargeCompletion: ChargeCompletion,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  @Post(["x402/v1/chat/completions", "v1/chat/completions"])
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply, @Headers("authorization") authorization?: string) {
    const parsed = parseChatCompletionRequest(req.body);
    if (!parsed.ok) {
      throw new ProblemException(
        problem(400, "invalid-request", "Invalid Request", parsed.error.message, { param: parsed.error.param }),
        {},
        { type: "invalid_request_error", code: "invalid_request", param: parsed.error.param },
      );
    }
    const paid = await this.chargeCompletion.execute({
      requestId: req.id,
      request: parsed.request,
      rawBody: req.rawBody ?? Buffer.alloc(0),
      client: req.clientKey,
      authorization,
      clientGone: () => clientGone(reply),
    });
    const headers = {
      "payment-receipt": paid.receipt,
      "x-request-id": req.id,
      "cache-control": "no-store",
      "server-timing": serverTiming(paid.timing),
    };
    const failed = (message: ErrorMessage) => this.failureProblem(message, headers, paid);
    if (paid.stream) return relaySse(reply, headers, paid.messages, failed);
    return relayJson(reply, headers, paid.messages, failed);
  }

  /** The problem for an inference that ended in an error before anything was relayed. */
  private failureProblem(message: ErrorMessage, headers: Record<string, string>, paid: PaidCompletion): ProblemException {
    if (message.code !== INFERENCE_REPLY_TIMEOUT && message.code !== "payment_refunded") return upstreamProblem(message, headers);
    // Nothing ran and nothing ever will (the job's admission verdict says so): the payment goes back, once.
    const amount = paid.quote.amount;
    const refund = { amount: amount.toString(), usd: formatUsd(amount), to: paid.payer };
    if (message.code === "payment_refunded")
      return new ProblemException(
        problem(
          503,
          "payment-refunded",
          "Payment Refunded",
          `this request's payment of ${refund.usd} is refunded on-chain to ${paid.payer}: it was taken for orphaned before an inference started; nothing was served or billed. Send the request again to pay anew.`,
          { refund },
        ),
        headers,
        { type: "server_error", code: "payment_refunded" },
      );
    const seconds = this.config.inference.replyTimeoutMs / 1000;
    const minutes = this.config.settlement.orphanedPaymentMinutes;
    return new ProblemException(
      problem(
        504,
        "inference-reply-timeout",
        "Inference Reply Timeout",
        `no inference worker started this request within ${seconds} s. It will never run and nothing is billed: the payment of ${refund.usd} (${refund.amount} base units) is refunded in full on-chain to ${paid.payer}, once, as soon as a worker takes the job off the queue and drops it, and at the latest ${minutes} minutes after the payment (the orphan sweep). Do not pay again for this request; send it again to get a new price.`,
        { refund },
      ),
      headers,
      { type: "server_error", code: INFERENCE_REPLY_TIMEOUT },
    );
  }
}

type ErrorMessage = Extract<StreamMessage, { type: "error" }>;

/** W3C Server-Timing: where the time before the answer went (the inference follows in the body). */
function serverTiming({ quoteMs, verifyMs }: { quoteMs: number; verifyMs: number }): string {
  return `quote;dur=${quoteMs.toFixed(2)};desc="validate+count+price", verify;dur=${verifyMs.toFixed(2)};desc="payment verification incl. chain"`;
}

/** Aborted when the client disconnects before the response is complete (cancels the inference). */
function clientGone(reply: FastifyReply): AbortSignal {
  const abort = new AbortController();
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  return abort.signal;
}

/** Non-streaming: the worker sends one `completion` message (or an error before anything was served). */
async function relayJson(
  reply: FastifyReply,
  headers: Record<string, string>,
  messages: AsyncIterable<StreamMessage>,
  failed: (message: ErrorMessage) => ProblemException,
) {
  for await (const message of messages) {
    if (message.type === "completion")
      return void reply
        .status(200)
        .headers({ ...headers, "content-type": "application/json" })
        .send(message.data);
    if (message.type === "error") throw failed(message);
  }
  throw new ProblemException(problem(502, "upstream-error", "Bad Gateway", "the inference ended without a completion"), headers, {
    type: "server_error",
    code: "upstream_error",
  });
}

/** Streaming: OpenAI SSE framing; chunks are relayed as the worker serialised them (no re-encoding). */
async function relaySse(
  reply: FastifyReply,
  headers: Record<string, string>,
  messages: AsyncIterable<StreamMessage>,
  failed: (message: ErrorMessage) => ProblemException,
) {
  const iterator = messages[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (!first.done && first.value.type === "error") throw failed(first.value);
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, {
    ...headers,
    "content-type": "text/event-stream; charset=utf-8",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  let next = first;
  while (!next.done) {
    const message = next.value;
    if (message.type === "chunk") out.write(`data: ${message.data}\n\n`);
    else if (message.type === "error") {
      out.write(`data: ${JSON.stringify({ error: { message: message.message, type: "server_error", code: message.code } })}\n\n`);
      break;
    } else if (message.type === "end") break;
    next = await iterator.next();
  }
  if (!out.destroyed) out.end("data: [DONE]\n\n");
}

function upstreamProblem(message: ErrorMessage, headers: Record<string, string>): ProblemException {
  const slug = message.status === 504 ? "upstream-timeout" : message.status >= 500 ? "upstream-error" : "upstream-rejected";
  return new ProblemException(
    problem(message.status, slug, message.status >= 500 ? "Upstream Error" : "Upstream Rejected The Request", message.message),
    headers,
    {
      type: message.status >= 500 ? "server_error" : "invalid_request_error",
      code: message.code,
    },
  );
}
