/**
 * The built-in provider: no network, no key. Serves a model whose provider is not configured, so the whole
 * system runs anywhere. The reply is a pseudo-random sentence seeded by the model and the messages (same
 * request, same answer); usage comes from our tokenizer, so billing works exactly as with a real provider.
 */
import { createHash } from "node:crypto";
import { countCompletionTokens, countPromptTokens, type ChatMessage, type ToolDefinition } from "@worldrouter/pricing";
import { ChunkEncoder, completionBody } from "./openai-format.js";
import {
  clientWantsUsage,
  type Completion,
  type ProviderAdapter,
  type ProviderCall,
  type StreamedChunk,
  type TokenUsage,
} from "./provider.js";
import { InferenceCancelledError } from "./errors.js";

const WORDS = (
  "the a of to and in for on with as by from at into over under between through each every many few more most " +
  "network token ledger channel voucher model stream request answer price payment gateway worker river mountain " +
  "light signal garden window ocean engine pattern memory thread market sentence question simple careful quick " +
  "quiet bright steady local exact fair open clear small large early late new old runs holds moves counts " +
  "settles streams carries returns builds finds keeps shows measures"
).split(" ");
const MIN_WORDS = 12;
const EXTRA_WORDS = 36;

interface LocalReply {
  pieces: string[];
  finishReason: "stop" | "length";
  usage: TokenUsage;
}

export class LocalProvider implements ProviderAdapter {
  readonly name = "local";

  async complete(call: ProviderCall): Promise<Completion> {
    const reply = this.reply(call);
    const content = reply.pieces.join("");
    return {
      data: completionBody({
        requestId: call.requestId,
        model: call.model.id,
        content,
        toolCalls: [],
        finishReason: reply.finishReason,
        usage: reply.usage,
      }),
      text: content,
      usage: reply.usage,
      finishReason: reply.finishReason,
    };
  }

  async *stream(call: ProviderCall): AsyncGenerator<StreamedChunk> {
    const reply = this.reply(call);
    const chunks = new ChunkEncoder(call.requestId, call.model.id);
    const { promptTokens, cachedTokens, cacheWriteTokens } = reply.usage;
    yield { data: chunks.delta({ role: "assistant", content: "" }), text: "", usage: { promptTokens, cachedTokens, cacheWriteTokens } };
    for (const piece of reply.pieces) {
      if (call.signal.aborted) throw new InferenceCancelledError();
      yield { data: chunks.delta({ content: piece }), text: piece };
    }
    yield { data: chunks.delta({}, reply.finishReason), text: "", finishReason: reply.finishReason, usage: reply.usage };
    if (clientWantsUsage(call.body)) yield { data: chunks.usage(reply.usage), text: "" };
  }

  private reply({ model, body }: ProviderCall): LocalReply {
    const messages = (body.messages ?? []) as ChatMessage[];
    const tools = body.tools as ToolDefinition[] | undefined;
    const limit =
      typeof body.max_completion_tokens === "number"
        ? body.max_completion_tokens
        : typeof body.max_tokens === "number"
          ? body.max_tokens
          : Infinity;
    const seed = createHash("sha256").update(model.id).update("\0").update(JSON.stringify(messages)).digest();
    let state = seed.readUInt32LE(0) || 1;
    const next = () => {
      // xorshift32: cheap, deterministic, good enough to pick words.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return state >>> 0;
    };
    const wordCount = MIN_WORDS + (next() % EXTRA_WORDS);
    const pieces: string[] = [];
    let text = "";
    let finishReason: LocalReply["finishReason"] = "stop";
    for (let i = 0; i < wordCount; i++) {
      const word = WORDS[next() % WORDS.length]!;
      const piece = i === 0 ? word[0]!.toUpperCase() + word.slice(1) : i === wordCount - 1 ? ` ${word}.` : ` ${word}`;
      if (countCompletionTokens(model, text + piece) > limit) {
        finishReason = "length";
        break;
      }
      pieces.push(piece);
      text += piece;
    }
    return {
      pieces,
      finishReason,
      usage: {
        promptTokens: countPromptTokens(model, messages, tools),
        completionTokens: countCompletionTokens(model, text),
        cachedTokens: 0,
        cacheWriteTokens: 0,
      },
    };
  }
}
