import OpenAI from "openai";
import type { FakeUpstream } from "../server.js";

export function openAiClient(upstream: FakeUpstream, options: { maxRetries?: number; headers?: Record<string, string> } = {}): OpenAI {
  return new OpenAI({
    apiKey: "sk-test",
    baseURL: `${upstream.url}/v1`,
    maxRetries: options.maxRetries ?? 0,
    defaultHeaders: options.headers ?? {},
  });
}

export const ANTHROPIC_HEADERS = { "content-type": "application/json", "x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01" };

export function postMessages(upstream: FakeUpstream, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${upstream.url}/v1/messages`, {
    method: "POST",
    headers: { ...ANTHROPIC_HEADERS, ...headers },
    body: JSON.stringify(body),
  });
}

export function postChat(upstream: FakeUpstream, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${upstream.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-test", ...headers },
    body: JSON.stringify(body),
  });
}
