import { ChargeChallenger, bodyDigest } from "../../libs/mpp/dist/index.js";
const ch = new ChargeChallenger({ secretKey: "dev-only-secret-key-0123456789abcdef0123456789", realm: "127.0.0.1:8080", currency: "0x20c000000000000000000000e9343992dac325b3", recipient: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", chainId: 4217, feePayer: true });
const digest = bodyDigest(Buffer.from("hello"));
const desc = "$0.000123 in USDC.e for 12 prompt tokens of gpt-4o-mini";
const t = performance.now(); let n = 0;
while (performance.now() - t < 3000) { for (let i = 0; i < 1000; i++) ch.challenge({ amount: 123n, digest, expiresAt: new Date(Date.now() + 300000), description: desc }); n += 1000; }
console.log(((performance.now() - t) * 1000 / n).toFixed(2), "µs");
