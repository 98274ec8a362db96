import { describe, expect, it } from "vitest";
import { decodeReplyEntry, encodeChunkBatch, encodeReplyEntry, type StreamMessage } from "./index.js";

describe("reply stream entries", () => {
  it("round-trips every message type, and a batch of chunks in order", () => {
    const messages: StreamMessage[] = [
      { type: "chunk", data: '{"id":"a"}' },
      { type: "completion", data: '{"object":"chat.completion"}' },
      { type: "error", status: 502, code: "upstream_error", message: "boom", streamed: true },
      { type: "end" },
    ];
    for (const message of messages)
      expect(decodeReplyEntry(["requestId", "wr_1", ...encodeReplyEntry(message)])).toEqual({ requestId: "wr_1", messages: [message] });
    expect(decodeReplyEntry(["requestId", "wr_2", ...encodeChunkBatch(["1", "2", "3"])]).messages).toEqual(
      ["1", "2", "3"].map((data) => ({ type: "chunk", data })),
    );
  });

  it("reports a malformed entry instead of guessing", () => {
    expect(decodeReplyEntry(["requestId", "wr_3", "type", "error", "data", "not json"]).messages).toBeUndefined();
    expect(decodeReplyEntry(["requestId", "wr_3", "type", "mystery"]).messages).toBeUndefined();
    expect(decodeReplyEntry(["type", "end"]).requestId).toBeUndefined();
  });
});
