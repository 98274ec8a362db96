import type { StreamMessage } from "./stream.js";

/**
 * Wire format of a reply stream entry (inference-worker writes, gateway reads): fields `requestId`, `type`, then
 * `data`: the serialised chunk or completion (a `chunk` entry may repeat `data`, one chunk each, in order, so a
 * burst costs one XADD); for `error` the JSON of {status, code, message, streamed}; no `data` for `end`.
 */
export function encodeReplyEntry(message: StreamMessage): string[] {
  switch (message.type) {
    case "chunk":
    case "completion":
      return ["type", message.type, "data", message.data];
    case "error":
      return [
        "type",
        "error",
        "data",
        JSON.stringify({ status: message.status, code: message.code, message: message.message, streamed: message.streamed }),
      ];
    case "end":
      return ["type", "end"];
  }
}

/** One entry carrying several chunks of the same request, in order. */
export function encodeChunkBatch(chunks: readonly string[]): string[] {
  const fields = ["type", "chunk"];
  for (const data of chunks) fields.push("data", data);
  return fields;
}

/** The request id and messages of one entry; `messages` is undefined when the entry is malformed. */
export function decodeReplyEntry(fields: readonly string[]): { requestId: string | undefined; messages: StreamMessage[] | undefined } {
  let requestId: string | undefined;
  let type: string | undefined;
  const data: string[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1]!;
    if (fields[i] === "requestId") requestId = value;
    else if (fields[i] === "type") type = value;
    else if (fields[i] === "data") data.push(value);
  }
  return { requestId, messages: decodeMessages(type, data) };
}

function decodeMessages(type: string | undefined, data: string[]): StreamMessage[] | undefined {
  switch (type) {
    case "chunk":
      return data.length > 0 ? data.map((chunk) => ({ type: "chunk", data: chunk })) : undefined;
    case "completion":
      return data[0] === undefined ? undefined : [{ type, data: data[0] }];
    case "end":
      return [{ type: "end" }];
    case "error":
      try {
        const error = JSON.parse(data[0] ?? "") as { status: number; code: string; message: string; streamed: boolean };
        return [{ type: "error", status: error.status, code: error.code, message: error.message, streamed: error.streamed }];
      } catch {
        return undefined;
      }
    default:
      return undefined;
  }
}
