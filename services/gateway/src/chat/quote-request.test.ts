import "reflect-metadata";
import { NestFactory } from "@nestjs/core";
import { FastifyAdapter, type NestFastifyApplication } from "@nestjs/platform-fastify";
import { loadConfig, type Config } from "@worldrouter/config";
import { getModel, priceCharge } from "@worldrouter/pricing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayModule } from "../gateway.module.js";
import { configureHttp } from "../http/configure-http.js";
import type { ModelList } from "../models/models.controller.js";

/** The gateway in-process on the run's real Redis; without a credential nothing reaches the verifier. */
async function startGateway(config: Config): Promise<{ app: NestFastifyApplication; url: string }> {
  const app = await NestFactory.create<NestFastifyApplication>(
    GatewayModule.forRoot(config),
    new FastifyAdapter(configureHttp.adapterOptions(config)),
    { logger: false, bodyParser: false },
  );
  configureHttp(app, config);
  await app.listen(0, "127.0.0.1");
  return { app, url: await app.getUrl() };
}

const BASE_ENV = {
  ...process.env,
  WORLD_FILE: "/nonexistent",
  PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
  LOG_LEVEL: "silent",
};

/** What a production deployment sets (no local world), with only Anthropic's key. */
const PRODUCTION_ENV = {
  ...BASE_ENV,
  NODE_ENV: "production",
  MPP_SECRET_KEY: "a-production-secret-of-at-least-thirty-two-bytes",
  OPS_TOKEN: "a-production-ops-token-of-some-length",
  OPS_READER_PASSWORD: "a-reader-password",
  CHAIN_RPC_URL: "https://rpc.example.invalid",
  CHAIN_ID: "4217",
  TOKEN_ADDRESS: "0x20c000000000000000000000b9537d11c60e8b50",
  PAYEE_ADDRESS: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", // the payee key's address, as production requires
  PAYEE_PRIVATE_KEY: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  FEE_PAYER_PRIVATE_KEY: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  ANTHROPIC_API_KEY: "sk-ant-real",
  OPENAI_API_KEY: "",
  OPENAI_BASE_URL: "",
};

const chat = (url: string, body: Record<string, unknown>) =>
  fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const hi = [{ role: "user", content: "hi" }];

describe("the charge price (402)", () => {
  let gateway: { app: NestFastifyApplication; url: string };
  beforeAll(async () => {
    gateway = await startGateway(loadConfig({ ...BASE_ENV, CHARGE_DEFAULT_MAX_TOKENS: "2000" }));
  });
  afterAll(() => gateway.app.close());

  it("covers n × the completion limit at the output price, and says so", async () => {
    const response = await chat(gateway.url, { model: "gpt-4o", messages: hi, n: 64 });
    expect(response.status).toBe(402);
    const body = (await response.json()) as { price: Record<string, unknown>; detail: string };
    expect(body.price).toMatchObject({ model: "gpt-4o", choices: 64, completionLimit: 2000, rule: expect.stringContaining("max_tokens") });
    const promptTokens = BigInt(body.price.promptTokens as number);
    const expected = priceCharge({ model: getModel("gpt-4o")!, promptTokens, choices: 64n, completionLimit: 2000n, minimumCharge: 1n });
    expect(BigInt(body.price.amount as string)).toBe(expected);
    expect(BigInt(body.price.amount as string)).toBeGreaterThan(BigInt(body.price.estimate as string));
    expect(body.detail).toContain("up to 64 × 2000 completion tokens");
    expect(response.headers.get("www-authenticate")).toContain("a lower max_tokens pays less");
    const llms = await (await fetch(`${gateway.url}/llms.txt`)).text();
    expect(llms).toContain("a lower max_tokens pays less");
    const openapi = (await (await fetch(`${gateway.url}/openapi.json`)).json()) as {
      paths: Record<string, { post: { "x-payment-info": { offers: { description: string }[] } } }>;
    };
    expect(openapi.paths["/v1/chat/completions"]!.post["x-payment-info"].offers[0]!.description).toContain("max_completion_tokens");
  });

  it("takes max_completion_tokens over max_tokens, caps both at the model's max output, and a lower limit pays less", async () => {
    const priceOf = async (extra: Record<string, unknown>) => {
      const body = (await (await chat(gateway.url, { model: "gpt-5", messages: hi, ...extra })).json()) as {
        price: Record<string, unknown>;
      };
      return { amount: BigInt(body.price.amount as string), limit: body.price.completionLimit };
    };
    expect((await priceOf({ max_completion_tokens: 8000, max_tokens: 10 })).limit).toBe(8000);
    expect((await priceOf({ max_tokens: 10 })).limit).toBe(10);
    expect((await priceOf({ max_completion_tokens: 10_000_000 })).limit).toBe(getModel("gpt-5")!.maxOutputTokens);
    expect((await priceOf({ max_tokens: 10 })).amount).toBeLessThan((await priceOf({})).amount);
  });

  it("fits the completion limit in what the prompt leaves of the context window", async () => {
    // gpt-4o: 128,000 tokens of context; this prompt leaves about 1,000 of them.
    const long = [{ role: "user", content: " hi".repeat(127_000) }];
    const fitted = await chat(gateway.url, { model: "gpt-4o", messages: long });
    expect(fitted.status).toBe(402);
    const { price } = (await fitted.json()) as { price: { promptTokens: number; completionLimit: number } };
    expect(price.completionLimit).toBe(128_000 - price.promptTokens);
    expect(price.completionLimit).toBeLessThan(2000);
    const tooLong = await chat(gateway.url, { model: "gpt-4o", messages: long, max_tokens: 16_000 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.headers.get("www-authenticate")).toBeNull();
    expect(await tooLong.json()).toMatchObject({
      type: "https://worldrouter.dev/problems/context-length-exceeded",
      error: { code: "context_length_exceeded", param: "max_tokens" },
    });
  });

  it.each([
    ["claude-sonnet-4-5", { n: 2 }, "n"],
    ["claude-sonnet-4-5", { logprobs: true }, "logprobs"],
    ["claude-sonnet-4-5", { response_format: { type: "json_object" } }, "response_format"],
    ["claude-sonnet-4-5", { temperature: 1.5 }, "temperature"],
    [
      "claude-sonnet-4-5",
      { messages: [{ role: "user", content: [{ type: "input_audio", input_audio: {} }] }] },
      "messages[0].content[0].type",
    ],
    ["gpt-4o", { audio: { voice: "alloy", format: "mp3" }, modalities: ["text", "audio"] }, "audio"],
    ["gpt-4o", { web_search_options: {} }, "web_search_options"],
    ["gpt-4o", { service_tier: "priority" }, "service_tier"],
    ["gpt-4o", { no_such_parameter: 1 }, "no_such_parameter"],
  ])("%s with %j: 400 problem+json naming %s, no challenge", async (model, extra, param) => {
    const response = await chat(gateway.url, { model, messages: hi, ...extra });
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(response.headers.get("www-authenticate")).toBeNull();
    expect(await response.json()).toMatchObject({
      type: "https://worldrouter.dev/problems/unsupported-parameter",
      status: 400,
      param,
      error: { code: "unsupported_parameter", param },
    });
  });

  it.each([
    ["claude-sonnet-4-5", { n: 1, logprobs: false, presence_penalty: 0, response_format: { type: "text" }, seed: null }],
    ["gpt-4o", { logprobs: true, top_logprobs: 3, seed: 7, service_tier: "auto", modalities: ["text"], store: false, metadata: {} }],
  ])("%s with %j: what the provider serves at the price is challenged (402)", async (model, extra) => {
    expect((await chat(gateway.url, { model, messages: hi, ...extra })).status).toBe(402);
  });
});

describe("production serves only real providers", () => {
  let gateway: { app: NestFastifyApplication; url: string };
  beforeAll(async () => {
    gateway = await startGateway(loadConfig(PRODUCTION_ENV));
  });
  afterAll(() => gateway.app.close());

  it("lists only the models of configured providers", async () => {
    const list = (await (await fetch(`${gateway.url}/v1/models`)).json()) as ModelList;
    expect(list.data.length).toBeGreaterThan(0);
    expect(new Set(list.data.map((m) => m.owned_by))).toEqual(new Set(["anthropic"]));
    expect(list.data.every((m) => m.served_by === "anthropic")).toBe(true);
    const llms = await (await fetch(`${gateway.url}/llms.txt`)).text();
    expect(llms).not.toContain("gpt-4o");
  });

  it("answers 503 model-unavailable (no 402) for a model whose provider has no key, 404 for an unknown one", async () => {
    const unavailable = await chat(gateway.url, { model: "gpt-4o", messages: hi });
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(unavailable.headers.get("www-authenticate")).toBeNull();
    expect(await unavailable.json()).toMatchObject({
      type: "https://worldrouter.dev/problems/model-unavailable",
      status: 503,
      error: { code: "model_unavailable" },
    });
    const unknown = await chat(gateway.url, { model: "gpt-nonexistent", messages: hi });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get("www-authenticate")).toBeNull();
    expect((await chat(gateway.url, { model: "claude-sonnet-4-5", messages: hi })).status).toBe(402);
  });
});
