/**
 * Wire format of the request/reply transport (`@worldrouter/runtime` stream-rpc-server / stream-rpc-client):
 * Redis Streams with queue semantics, so each request runs on exactly one replica of the serving service.
 *
 * Requests: one stream per serving service, `rpcRequestStreamKey(ns, service)`, read by every replica of that
 * service as one consumer group (`RPC_SERVER_GROUP`). One stream per service rather than per pattern: a replica
 * serves all of its patterns with one blocking reader and one concurrency bound. Entry fields, in this order:
 *   `id`       the caller's correlation id (unique per call)
 *   `pattern`  the Nest message pattern, e.g. `payment.verify`
 *   `replyTo`  the caller's reply stream key
 *   `deadline` epoch ms after which the caller no longer waits (the server then skips the request)
 *   `payload`  JSON of the message
 * Replies: one stream per caller process, `rpcReplyStreamKey(ns, instanceId)`, tailed by that process only.
 * Entry fields: `id` (the request's), `outcome` (`ok` | `error` | `expired`), then `body`: JSON of the handler's
 * answer (`ok`) or of the error (`error`); no `body` for `expired` (the deadline passed before it ran).
 */
export const rpcRequestStreamKey = (namespace: string, service: string) => `${namespace}:rpc:requests:${service}`;
export const rpcReplyStreamKey = (namespace: string, instanceId: string) => `${namespace}:rpc:replies:${instanceId}`;
/** The one consumer group the replicas of a serving service read its request stream with. */
export const RPC_SERVER_GROUP = "rpc-servers";

export interface RpcRequest {
  id: string;
  pattern: string;
  replyTo: string;
  deadline: number;
  payload: unknown;
}

export type RpcReply =
  | { id: string; outcome: "ok"; body: unknown }
  | { id: string; outcome: "error"; body: unknown }
  | { id: string; outcome: "expired" };

export function encodeRpcRequest(request: RpcRequest): string[] {
  return [
    "id",
    request.id,
    "pattern",
    request.pattern,
    "replyTo",
    request.replyTo,
    "deadline",
    String(request.deadline),
    "payload",
    JSON.stringify(request.payload ?? null),
  ];
}

/** The request of one entry; undefined when a field is missing or the payload is not JSON. */
export function decodeRpcRequest(fields: readonly string[]): RpcRequest | undefined {
  const f = fieldMap(fields);
  const deadline = Number(f.deadline);
  if (f.id === undefined || f.pattern === undefined || f.replyTo === undefined || f.payload === undefined || !Number.isFinite(deadline))
    return undefined;
  const payload = parseJson(f.payload);
  return payload.ok ? { id: f.id, pattern: f.pattern, replyTo: f.replyTo, deadline, payload: payload.value } : undefined;
}

export function encodeRpcReply(reply: RpcReply): string[] {
  return reply.outcome === "expired"
    ? ["id", reply.id, "outcome", "expired"]
    : ["id", reply.id, "outcome", reply.outcome, "body", JSON.stringify(reply.body ?? null)];
}

/** The reply of one entry; undefined when malformed. */
export function decodeRpcReply(fields: readonly string[]): RpcReply | undefined {
  const f = fieldMap(fields);
  if (f.id === undefined) return undefined;
  if (f.outcome === "expired") return { id: f.id, outcome: "expired" };
  if ((f.outcome !== "ok" && f.outcome !== "error") || f.body === undefined) return undefined;
  const body = parseJson(f.body);
  return body.ok ? { id: f.id, outcome: f.outcome, body: body.value } : undefined;
}

function fieldMap(fields: readonly string[]): Record<string, string | undefined> {
  const map: Record<string, string | undefined> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) map[fields[i]!] = fields[i + 1];
  return map;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}
