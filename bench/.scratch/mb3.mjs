import { createChargeChallenge, serializeChallenge, bodyDigest, ChargeChallenger, chargeRequest } from "../../libs/mpp/dist/index.js";
import { canonicalize, serializePaymentRequest, hmacSha256Base64Url } from "../../libs/mpp/dist/wire.js";
const key = "dev-only-secret-key-0123456789abcdef0123456789";
const terms = { amount: 123n, currency: "0x20c000000000000000000000e9343992dac325b3", recipient: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", chainId: 4217, feePayer: true };
const digest = bodyDigest(Buffer.from("hello"));
const desc = "$0.000123 in USDC.e for 12 prompt tokens of gpt-4o-mini";
function bench(name, fn, n = 50000) { for (let i = 0; i < 5000; i++) fn(); const t = performance.now(); for (let i = 0; i < n; i++) fn(); console.log(name.padEnd(34), ((performance.now() - t) * 1000 / n).toFixed(2), "µs"); }
bench("createChargeChallenge", () => createChargeChallenge({ secretKey: key, realm: "127.0.0.1:8080", terms, digest, expiresAt: new Date(Date.now() + 300000), description: desc }));
const ch = new ChargeChallenger({ secretKey: key, realm: "127.0.0.1:8080", currency: terms.currency, recipient: terms.recipient, chainId: 4217, feePayer: true });
bench("ChargeChallenger.challenge", () => ch.challenge({ amount: 123n, digest, expiresAt: new Date(Date.now() + 300000), description: desc }));
bench("chargeRequest", () => chargeRequest(terms));
const req = chargeRequest(terms);
bench("canonicalize", () => canonicalize(req));
bench("serializePaymentRequest", () => serializePaymentRequest(req));
bench("hmac", () => hmacSha256Base64Url(key, "127.0.0.1:8080|tempo|charge|eyJhbW91bnQiOiIxMjMiLCJjdXJyZW5jeSI6IjB4MjBjMDAwMDAwMDAwMDAwMDAwMDAwMDAwZTkzNDM5OTJkYWMzMjViMyIsIm1ldGhvZERldGFpbHMiOnsiY2hhaW5JZCI6NDIxNywiZmVlUGF5ZXIiOnRydWV9LCJyZWNpcGllbnQiOiIweDcwOTk3OTcwYzUxODEyZGMzYTAxMGM3ZDAxYjUwZTBkMTdkYzc5YzgifQ|2026-11-25T18:05:00.000Z|sha-256=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG=|"));
bench("new Date().toISOString", () => new Date(Date.now() + 300000).toISOString());
