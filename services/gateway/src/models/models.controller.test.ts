import "reflect-metadata";
import { Module } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import { FastifyAdapter, type NestFastifyApplication } from "@nestjs/platform-fastify";
import { loadConfig } from "@worldrouter/config";
import { listModels } from "@worldrouter/pricing";
import { CoreModule } from "@worldrouter/runtime";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelList } from "./models.controller.js";
import { modelRegistryProvider } from "../pricing/model-registry.provider.js";
import { ModelsController } from "./models.controller.js";

const config = loadConfig({
  ...process.env,
  WORLD_FILE: "/nonexistent",
  PAYEE_ADDRESS: "0x00000000000000000000000000000000000000aa",
  LOG_LEVEL: "silent",
  OPENAI_API_KEY: "sk-real",
});
let app: NestFastifyApplication;
let url: string;

beforeAll(async () => {
  @Module({ imports: [CoreModule.forRoot("gateway", config)], controllers: [ModelsController], providers: [modelRegistryProvider] })
  class TestModule {}
  app = await NestFactory.create<NestFastifyApplication>(TestModule, new FastifyAdapter(), { logger: false });
  await app.listen(0, "127.0.0.1");
  url = await app.getUrl();
});
afterAll(() => app.close());

describe("GET /v1/models", () => {
  it("lists every catalogue model in OpenAI's format, readable by the OpenAI SDK", async () => {
    const client = new OpenAI({ apiKey: "unused", baseURL: `${url}/v1` });
    const models = [];
    for await (const model of client.models.list()) models.push(model);
    expect(models.map((m) => m.id)).toEqual(listModels().map((m) => m.id));
    expect(models[0]).toMatchObject({ object: "model", owned_by: "openai", created: expect.any(Number) });
  });

  it("adds prices, limits, intents and who serves each model now; /x402/v1/models is the same", async () => {
    const body = (await (await fetch(`${url}/v1/models`)).json()) as ModelList;
    expect(await (await fetch(`${url}/x402/v1/models`)).json()).toEqual(body);
    const gpt5 = body.data.find((m) => m.id === "gpt-5");
    expect(gpt5).toEqual({
      id: "gpt-5",
      object: "model",
      created: expect.any(Number),
      owned_by: "openai",
      aliases: [],
      context_length: 400_000,
      max_output_tokens: 128_000,
      served_by: "openai",
      intents: ["charge", "session"],
      pricing: {
        currency: config.chain.token,
        decimals: 6,
        usd_per_million_tokens: { input: "0.125", output: "1.00", cached_input: "0.0125", cache_write: null },
        base_units_per_million_tokens: { input: "125000", output: "1000000", cached_input: "12500", cache_write: null },
        charge_overhead: "1.5",
      },
    });
    const claude = body.data.find((m) => m.id === "claude-sonnet-4-5");
    expect(claude).toMatchObject({
      owned_by: "anthropic",
      served_by: "local",
      aliases: ["claude-sonnet-4-5-20250929"],
      pricing: { usd_per_million_tokens: { input: "3.00", cache_write: "3.75" } },
    });
  });
});
