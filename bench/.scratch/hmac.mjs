import { createHmac, createHash } from "node:crypto";
const key = "dev-only-secret-key-0123456789abcdef0123456789";
const input = "127.0.0.1:8080|tempo|charge|eyJhbW91bnQiOiIxMjMiLCJjdXJyZW5jeSI6IjB4MjBjMDAwMDAwMDAwMDAwMDAwMDAwMDAwZTkzNDM5OTJkYWMzMjViMyIsIm1ldGhvZERldGFpbHMiOnsiY2hhaW5JZCI6NDIxNywiZmVlUGF5ZXIiOnRydWV9LCJyZWNpcGllbnQiOiIweDcwOTk3OTcwYzUxODEyZGMzYTAxMGM3ZDAxYjUwZTBkMTdkYzc5YzgifQ|2026-11-25T18:05:00.000Z|sha-256=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG=|";
function bench(name, fn, n = 100000) { for (let i = 0; i < 5000; i++) fn(); const t = performance.now(); for (let i = 0; i < n; i++) fn(); console.log(name.padEnd(30), ((performance.now() - t) * 1000 / n).toFixed(2), "µs"); }
let k = Buffer.from(key); if (k.length > 64) k = createHash("sha256").update(k).digest();
const block = Buffer.alloc(64); k.copy(block);
const ipad = Buffer.from(block.map((b) => b ^ 0x36)), opad = Buffer.from(block.map((b) => b ^ 0x5c));
const inner = createHash("sha256").update(ipad), outer = createHash("sha256").update(opad);
const fast = (m) => outer.copy().update(inner.copy().update(m).digest()).digest("base64url");
console.log(fast(input) === createHmac("sha256", key).update(input).digest("base64url"));
bench("createHmac", () => createHmac("sha256", key).update(input).digest("base64url"));
bench("createHmac keyobj", (() => { const { createSecretKey } = await_import(); return () => 0; })());
bench("copy-based", () => fast(input));
function await_import() { return { createSecretKey: null }; }
import { createSecretKey } from "node:crypto";
const ko = createSecretKey(Buffer.from(key));
bench("createHmac KeyObject", () => createHmac("sha256", ko).update(input).digest("base64url"));
const inBuf = Buffer.from(input);
bench("createHmac KeyObject buf", () => createHmac("sha256", ko).update(inBuf).digest("base64url"));
bench("Buffer.from(input)", () => Buffer.from(input));
