import { describe, expect, it } from "vitest";
import { decodeRpcReply, decodeRpcRequest, encodeRpcReply, encodeRpcRequest } from "./index.js";

describe("RPC stream entries", () => {
  it("writes a request's fields in the documented order and reads them back", () => {
    const request = {
      id: "c1",
      pattern: "payment.verify",
      replyTo: "wr:rpc:replies:h-1-ab",
      deadline: 1_700_000_000_000,
      payload: { a: 1 },
    };
    const fields = encodeRpcRequest(request);
    expect(fields).toEqual([
      "id",
      "c1",
      "pattern",
      "payment.verify",
      "replyTo",
      "wr:rpc:replies:h-1-ab",
      "deadline",
      "1700000000000",
      "payload",
      '{"a":1}',
    ]);
    expect(decodeRpcRequest(fields)).toEqual(request);
  });

  it("round-trips every reply outcome", () => {
    expect(encodeRpcReply({ id: "c2", outcome: "expired" })).toEqual(["id", "c2", "outcome", "expired"]);
    for (const reply of [
      { id: "c3", outcome: "ok", body: { ok: true } },
      { id: "c4", outcome: "ok", body: null },
      { id: "c5", outcome: "error", body: { status: "error", message: "boom" } },
      { id: "c6", outcome: "expired" },
    ] as const)
      expect(decodeRpcReply(encodeRpcReply(reply))).toEqual(reply);
  });

  it("reports a malformed entry instead of guessing", () => {
    expect(decodeRpcRequest(["id", "c7", "pattern", "p", "replyTo", "r", "deadline", "soon", "payload", "{}"])).toBeUndefined();
    expect(decodeRpcRequest(["id", "c8", "pattern", "p", "replyTo", "r", "deadline", "1", "payload", "not json"])).toBeUndefined();
    expect(decodeRpcReply(["id", "c9", "outcome", "ok"])).toBeUndefined();
    expect(decodeRpcReply(["id", "c10", "outcome", "maybe", "body", "1"])).toBeUndefined();
  });
});
