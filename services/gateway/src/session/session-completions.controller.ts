import { Controller, Head, Headers, HttpCode, Inject, Post, Req, Res } from "@nestjs/common";
import type { FastifyReply, FastifyRequest } from "fastify";
import { parseChatCompletionRequest } from "../chat/chat-request.js";
import { problem, ProblemException } from "../http/problem.js";
import { MeteredSession } from "./metered-session.js";
import { SessionCompletion } from "./session-completion.use-case.js";

const SESSION_PATH = "x402/v1/chat/completions/stream";

/**
 * HTTP edge of the session intent. A POST with a chat body is a paid request (metered SSE when `stream: true`, else
 * JSON); HEAD, or a POST without a body, is session management (voucher, topUp, close) answered 204 + receipt, as
 * mppx's session client sends them.
 */
@Controller()
export class SessionCompletionsController {
  constructor(
    @Inject(SessionCompletion) private readonly session: SessionCompletion,
    @Inject(MeteredSession) private readonly metering: MeteredSession,
  ) {}

  @Head(SESSION_PATH)
  async head(@Req() req: FastifyRequest, @Res() reply: FastifyReply, @Headers("authorization") authorization?: string) {
    return this.manage(req, reply, authorization);
  }

  @Post(SESSION_PATH)
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Res() reply: FastifyReply, @Headers("authorization") authorization?: string) {
    if (req.body === undefined && (req.rawBody?.length ?? 0) === 0 && authorization) return this.manage(req, reply, authorization);
    const parsed = parseChatCompletionRequest(req.body);
    if (!parsed.ok) {
      throw new ProblemException(
        problem(400, "invalid-request", "Invalid Request", parsed.error.message, { param: parsed.error.param }),
        {},
        { type: "invalid_request_error", code: "invalid_request", param: parsed.error.param },
      );
    }
    const paid = await this.session.execute({ requestId: req.id, request: parsed.request, authorization });
    const gone = clientGone(reply);
    const headers = { "payment-receipt": paid.receipt, "x-request-id": req.id, "cache-control": "no-store" };
    if (!paid.stream) {
      const reserved = await this.metering.reserveUpFront(paid.metered, paid.quote.completionLimit * paid.quote.choices);
      if (!reserved.ok) throw this.session.insufficientBalance(paid.quote.model, reserved.shortfall);
      let completion: string | undefined;
      let failure: { status: number; message: string; code: string } | undefined;
      try {
        for await (const message of paid.startInference(gone)) {
          if (message.type === "completion") completion = message.data;
          else if (message.type === "error") failure = message;
        }
      } finally {
        const bill = await this.metering.billCompletion(paid.metered, completion);
        headers["payment-receipt"] = bill.receipt;
      }
      if (completion === undefined)
        throw new ProblemException(
          problem(
            failure?.status ?? 502,
            "upstream-error",
            "Upstream Error",
            failure?.message ?? "the inference ended without a completion",
          ),
          headers,
          { type: "server_error", code: failure?.code ?? "upstream_error" },
        );
      return void reply
        .status(200)
        .headers({ ...headers, "content-type": "application/json" })
        .send(completion);
    }
    reply.hijack();
    reply.raw.writeHead(200, {
      ...headers,
      "content-type": "text/event-stream; charset=utf-8",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    await this.metering.stream(
      paid.metered,
      paid.quote.completionLimit * paid.quote.choices,
      reply.raw,
      () => paid.startInference(gone)[Symbol.asyncIterator](),
      gone,
    );
  }

  private async manage(req: FastifyRequest, reply: FastifyReply, authorization: string | undefined) {
    const receipt = await this.session.manage(req.id, authorization);
    return void reply.status(204).headers({ "payment-receipt": receipt, "cache-control": "no-store" }).send();
  }
}

/** Aborted when the client disconnects before the response is complete (cancels the inference). */
function clientGone(reply: FastifyReply): AbortSignal {
  const abort = new AbortController();
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  return abort.signal;
}
