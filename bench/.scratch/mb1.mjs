import { createChargeChallenge, serializeChallenge, bodyDigest } from "../../libs/mpp/dist/index.js";
import { parseChatCompletionRequest } from "../../services/gateway/dist/chat/chat-request.js";
const input = () => ({ secretKey: "dev-only-secret-key-0123456789abcdef0123456789", realm: "127.0.0.1:8080", terms: { amount: 123n, currency: "0x20c000000000000000000000e9343992dac325b3", recipient: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", chainId: 4217, feePayer: true }, digest: bodyDigest(Buffer.from("hello")), expiresAt: new Date(Date.now()+300000), description: "$0.000123 in USDC.e for 12 prompt tokens of gpt-4o-mini" });
function bench(name, fn, n = 20000) { for (let i = 0; i < 2000; i++) fn(); const t = performance.now(); for (let i = 0; i < n; i++) fn(); const us = (performance.now() - t) * 1000 / n; console.log(name, us.toFixed(2), "µs"); }
bench("createChargeChallenge", () => createChargeChallenge(input()));
const c = createChargeChallenge(input());
bench("serializeChallenge", () => serializeChallenge(c));
const body = Buffer.from(JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello there, how are you?" }] }));
bench("bodyDigest", () => bodyDigest(body));
bench("JSON.parse", () => JSON.parse(body.toString()));
bench("parseChatCompletionRequest", () => parseChatCompletionRequest(JSON.parse(body.toString())));
