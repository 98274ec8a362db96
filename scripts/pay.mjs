#!/usr/bin/env node
// Pays for one chat completion with the real mppx client, from a funded wallet of the local world
// (.local/world.json, written by `npm start`). Usage: node scripts/pay.mjs "Hello" [model] [--stream]
import { readFileSync } from "node:fs";
import { Mppx, tempo } from "mppx/client";
import { Receipt } from "mppx";
import { createPublicClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { tempo as tempoChain } from "viem/chains";

const [prompt = "Hello", model = "gpt-4o-mini"] = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const stream = process.argv.includes("--stream");
const world = JSON.parse(readFileSync(process.env.WORLD_FILE ?? ".local/world.json", "utf8"));
const gateway = process.env.GATEWAY_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8080}`;
const account = privateKeyToAccount(world.wallets[0].privateKey);
const chain = tempoChain.extend({ id: world.chainId, rpcUrls: { default: { http: [world.rpcUrl] } }, feeToken: world.token.address });
const client = createPublicClient({ chain, transport: http(world.rpcUrl) });
const mppx = Mppx.create({
  polyfill: false,
  methods: [tempo.charge({ account, getClient: () => client, expectedChainId: world.chainId })],
});

const response = await mppx.fetch(`${gateway}/x402/v1/chat/completions`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ model, stream, messages: [{ role: "user", content: prompt }] }),
});
console.error(`HTTP ${response.status} · paid by ${account.address}`);
const receipt = response.headers.get("payment-receipt");
if (receipt) console.error(`receipt: ${JSON.stringify(Receipt.deserialize(receipt))}`);
if (stream) for await (const chunk of response.body) process.stdout.write(chunk);
else console.log(JSON.stringify(await response.json(), null, 2));
