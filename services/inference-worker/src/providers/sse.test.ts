import { describe, expect, it } from "vitest";
import { SseDecoder, type SseEvent } from "./sse.js";

const STREAM =
  ": comment\r\n" +
  'event: message_start\r\ndata: {"type":"message_start","text":"héllo 🌍"}\r\n\r\n' +
  'data: {"a":1}\n\n' +
  "data: line one\ndata: line two\n\n" +
  'event: ping\ndata:{"type":"ping"}\n\n' +
  "data: [DONE]\n\n";

const EXPECTED: SseEvent[] = [
  { event: "message_start", data: '{"type":"message_start","text":"héllo 🌍"}' },
  { event: undefined, data: '{"a":1}' },
  { event: undefined, data: "line one\nline two" },
  { event: "ping", data: '{"type":"ping"}' },
  { event: undefined, data: "[DONE]" },
];

function decodeAll(parts: Uint8Array[]): SseEvent[] {
  const decoder = new SseDecoder();
  return parts.flatMap((part) => decoder.decode(part));
}

describe("SseDecoder", () => {
  const bytes = new TextEncoder().encode(STREAM);

  it("decodes a stream delivered at once", () => {
    expect(decodeAll([bytes])).toEqual(EXPECTED);
  });

  it("gives the same events wherever the bytes are split (inside CRLF, multi-byte characters, fields)", () => {
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(decodeAll([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(EXPECTED);
    }
  });

  it("gives the same events byte by byte", () => {
    expect(decodeAll(Array.from(bytes, (_, i) => bytes.subarray(i, i + 1)))).toEqual(EXPECTED);
  });

  it("holds an event back until its blank line arrives", () => {
    const decoder = new SseDecoder();
    const encode = (text: string) => new TextEncoder().encode(text);
    expect(decoder.decode(encode('data: {"partial":'))).toEqual([]);
    expect(decoder.decode(encode("true}\n"))).toEqual([]);
    expect(decoder.decode(encode("\n"))).toEqual([{ event: undefined, data: '{"partial":true}' }]);
  });
});
