/** Test fixtures: the fake upstream behind a recording proxy, provider calls, stream collection. */
import { startFakeUpstream, type FakeUpstream } from "@worldrouter/fake-upstream";
import { getModel, type Model } from "@worldrouter/pricing";
import type { ChatCompletionBody, ProviderCall, StreamedChunk } from "../providers/provider.js";
import { startRecordingProxy, type RecordingProxy } from "./recording-proxy.js";

export interface Upstreams {
  fake: FakeUpstream;
  proxy: RecordingProxy;
  close(): Promise<void>;
}

export async function startUpstreams(): Promise<Upstreams> {
  const fake = await startFakeUpstream({ port: 0 });
  const proxy = await startRecordingProxy(fake.url);
  return {
    fake,
    proxy,
    async close() {
      await proxy.close();
      await fake.close();
    },
  };
}

export function model(id: string): Model {
  const found = getModel(id);
  if (!found) throw new Error(`test model ${id} is not in the catalogue`);
  return found;
}

let counter = 0;
export const testRequestId = () => `wr_test${Date.now().toString(36)}${(counter++).toString(36)}`;

export function providerCall(modelId: string, body: ChatCompletionBody, signal: AbortSignal = new AbortController().signal): ProviderCall {
  return { requestId: testRequestId(), model: model(modelId), body: { model: modelId, ...body }, signal };
}

export async function collect(stream: AsyncIterable<StreamedChunk>): Promise<StreamedChunk[]> {
  const chunks: StreamedChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/** Parsed client-visible chunks. */
export function chunkBodies(chunks: StreamedChunk[]): Record<string, any>[] {
  return chunks.filter((chunk) => chunk.data !== undefined).map((chunk) => JSON.parse(chunk.data!));
}

/** The assistant text of client-visible chunks. */
export function contentOf(chunks: StreamedChunk[]): string {
  return chunkBodies(chunks)
    .map((chunk) => chunk.choices?.[0]?.delta?.content ?? "")
    .join("");
}

export const USER_MESSAGES = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Say something about payment channels." },
];
