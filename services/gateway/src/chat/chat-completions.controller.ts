import { Controller, Headers, HttpCode, Inject, Post, Req, Res } from "@nestjs/common";
import type { StreamMessage } from "@worldrouter/contracts";
import type { FastifyReply, FastifyRequest } from "fastify";
import { problem, ProblemException } from "../http/problem.js";
import { parseChatCompletionRequest } from "./chat-request.js";
import { ChargeCompletion } from "./charge-completion.use-case.js";

/** HTTP edge of the charge intent; also served at `/v1/...` so any OpenAI SDK can point at the gateway. */
@Controller()
export class ChatCompletionsController {
  constructor(@Inject(ChargeCompletion) private readonly chargeCompletion: ChargeCompletion) {}

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
      authorization,
      clientGone: () => clientGone(reply),
    });
    const headers = {
      "payment-receipt": paid.receipt,
      "x-request-id": req.id,
      "cache-control": "no-store",
      "server-timing": serverTiming(paid.timing),
    };
    if (paid.stream) return relaySse(reply, headers, paid.messages);
    return relayJson(reply, headers, paid.messages);
  }
}

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
async function relayJson(reply: FastifyReply, headers: Record<string, string>, messages: AsyncIterable<StreamMessage>) {
  for await (const message of messages) {
    if (message.type === "completion")
      return void reply
        .status(200)
        .headers({ ...headers, "content-type": "application/json" })
        .send(message.data);
    if (message.type === "error") throw upstreamProblem(message, headers);
  }
  throw new ProblemException(problem(502, "upstream-error", "Bad Gateway", "the inference ended without a completion"), headers, {
    type: "server_error",
    code: "upstream_error",
  });
}

/** Streaming: OpenAI SSE framing; chunks are relayed as the worker serialised them (no re-encoding). */
async function relaySse(reply: FastifyReply, headers: Record<string, string>, messages: AsyncIterable<StreamMessage>) {
  const iterator = messages[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (!first.done && first.value.type === "error") throw upstreamProblem(first.value, headers);
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

function upstreamProblem(message: Extract<StreamMessage, { type: "error" }>, headers: Record<string, string>): ProblemException {
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
