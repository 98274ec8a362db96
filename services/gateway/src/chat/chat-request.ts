import { z } from "zod";

/**
 * OpenAI chat-completions request body: the fields we price or route on are checked with OpenAI's types and
 * ranges; everything else is passed through untouched to the provider.
 */
const ContentPart = z.looseObject({ type: z.string().min(1) });
const Message = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
  content: z.union([z.string(), z.array(ContentPart), z.null()]).optional(),
  name: z.string().optional(),
  tool_call_id: z.string().optional(),
  tool_calls: z
    .array(z.looseObject({ id: z.string(), type: z.string(), function: z.looseObject({ name: z.string(), arguments: z.string() }) }))
    .optional(),
});
const Tool = z.looseObject({
  type: z.string(),
  function: z
    .looseObject({
      name: z.string().min(1).max(64),
      description: z.string().optional(),
      parameters: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
});

export const ChatCompletionRequest = z.looseObject({
  model: z.string().min(1, "model is required"),
  messages: z.array(Message).min(1, "messages must contain at least one message"),
  stream: z.boolean().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  n: z.number().int().min(1).max(128).nullable().optional(),
  max_tokens: z.number().int().min(1).nullable().optional(),
  max_completion_tokens: z.number().int().min(1).nullable().optional(),
  stop: z
    .union([z.string(), z.array(z.string()).max(4)])
    .nullable()
    .optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  logit_bias: z.record(z.string(), z.number().min(-100).max(100)).nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  tools: z.array(Tool).max(128).optional(),
  tool_choice: z.union([z.enum(["none", "auto", "required"]), z.looseObject({ type: z.string() })]).optional(),
  parallel_tool_calls: z.boolean().optional(),
  response_format: z.looseObject({ type: z.enum(["text", "json_object", "json_schema"]) }).optional(),
  reasoning_effort: z.enum(["minimal", "low", "medium", "high", "none", "xhigh"]).nullable().optional(),
  user: z.string().optional(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

export interface InvalidParameter {
  param: string;
  message: string;
}

/** Parses a body; on failure names the first offending parameter the way OpenAI does (`messages[0].role`). */
export function parseChatCompletionRequest(
  body: unknown,
): { ok: true; request: ChatCompletionRequest } | { ok: false; error: InvalidParameter } {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return { ok: false, error: { param: "body", message: "the request body must be a JSON object" } };
  const parsed = ChatCompletionRequest.safeParse(body);
  if (parsed.success) return { ok: true, request: parsed.data };
  const issue = parsed.error.issues[0]!;
  const param = issue.path.reduce<string>(
    (acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
    "",
  );
  return { ok: false, error: { param: param || "body", message: `${param || "body"}: ${issue.message}` } };
}
