import { z } from "zod";

/**
 * Messages on a gateway's reply stream (inference-worker → gateway), each entry also carrying `requestId`. `chunk` carries one OpenAI
 * `chat.completion.chunk` already serialised (the gateway relays it without re-encoding); `completion`
 * is the whole non-streamed response; `error` ends the request with an OpenAI-style error.
 */
export const StreamMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("chunk"), data: z.string() }),
  z.object({ type: z.literal("completion"), data: z.string() }),
  z.object({ type: z.literal("error"), status: z.number().int(), code: z.string(), message: z.string(), streamed: z.boolean() }),
  z.object({ type: z.literal("end") }),
]);
export type StreamMessage = z.infer<typeof StreamMessage>;
