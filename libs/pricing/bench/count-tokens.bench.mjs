#!/usr/bin/env node
// How long counting a ~100k-token prompt blocks the event loop, inline (countPromptTokens) vs off-thread
// (countPromptTokensOffThread). Runs against dist/: `npx tsc -b` first. Every run counts a fresh text (new seed),
// so the tokenizer's merge cache cannot make later runs look faster than a real new prompt would.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { closeTokenCounterPool, countPromptTokens, countPromptTokensOffThread, countTextTokens } from "../dist/index.js";

const RUNS = Number(process.env.RUNS ?? 10);
const TARGET_TOKENS = 100_000;
const OUT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../bench/results/pricing-count-tokens.json");
const openai = { tokenizer: "o200k_base" };

const WORDS = (
  "the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you " +
  "were her she there been one all we their has would when if so no will can more about said up out them some could " +
  "into than other what time only new my two may first then do any like these its over such our after most also made " +
  "many before must through back years where much your way well down should because each just those people how too " +
  "little state good very make world still own see men work long get here between both life being under never day " +
  "same another know while last might us great old year off come since against go came right used take three request " +
  "payment channel voucher token model stream latency gateway settlement ledger balance invoice receipt signature " +
  "function return const await async string number boolean interface export import default class extends"
).split(" ");

function prng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** English-like prose with numbers, identifiers and line breaks: close to a real long prompt. */
function prose(seed, words) {
  const random = prng(seed);
  const out = [];
  for (let i = 0; i < words; i++) {
    const r = random();
    if (r < 0.04) out.push(String(Math.floor(random() * 100_000)));
    else if (r < 0.06) out.push(`${WORDS[Math.floor(random() * WORDS.length)]}_${Math.floor(random() * 1000)}`);
    else out.push(WORDS[Math.floor(random() * WORDS.length)]);
    if (random() < 0.07) out.push(random() < 0.3 ? ".\n" : ",");
  }
  return out.join(" ");
}

/** Pseudo-words that are almost never in the merge cache: the tokenizer's worst case. */
function unique(seed, words) {
  const random = prng(seed);
  const syllables = ["ka", "lo", "mi", "zu", "ter", "qua", "ven", "dro", "pli", "sna", "xo", "bre", "gul", "fim"];
  const out = [];
  for (let i = 0; i < words; i++) {
    let word = "";
    for (let s = 1 + Math.floor(random() * 4); s > 0; s--) word += syllables[Math.floor(random() * syllables.length)];
    out.push(word);
  }
  return out.join(" ");
}

const CORPORA = [
  { name: "prose", make: prose, wordsPerToken: 0.8 },
  { name: "unique", make: unique, wordsPerToken: 0.4 },
];

const messagesFor = (text) => [
  { role: "system", content: "You are a careful assistant. Answer using the document." },
  { role: "user", content: text },
];

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const stats = (values) => ({ p50: round(percentile(values, 50)), max: round(Math.max(...values)), min: round(Math.min(...values)) });
const round = (ms) => Math.round(ms * 100) / 100;

async function main() {
  const results = [];
  // Spawn the worker and load its tokenizer once, as a long-running server would have.
  const warmStart = performance.now();
  await countPromptTokensOffThread(openai, messagesFor(prose(1, 20_000)));
  const workerColdStartMs = round(performance.now() - warmStart);

  for (const corpus of CORPORA) {
    const words = Math.round(TARGET_TOKENS * corpus.wordsPerToken);
    const texts = Array.from({ length: RUNS }, (_, run) => corpus.make(1000 + run, words));
    const tokens = countTextTokens(texts[0]);

    const inline = [];
    for (const text of texts.map((t) => `${t} inline`)) {
      const start = performance.now();
      countPromptTokens(openai, messagesFor(text));
      inline.push(performance.now() - start);
    }

    const blocked = [];
    const latency = [];
    const loopDelayMax = [];
    for (const text of texts.map((t) => `${t} offthread`)) {
      const histogram = monitorEventLoopDelay({ resolution: 1 });
      histogram.enable();
      const start = performance.now();
      const pending = countPromptTokensOffThread(openai, messagesFor(text));
      blocked.push(performance.now() - start);
      await pending;
      latency.push(performance.now() - start);
      histogram.disable();
      loopDelayMax.push(histogram.max / 1e6);
    }

    results.push({
      corpus: corpus.name,
      tokens,
      chars: texts[0].length,
      runs: RUNS,
      inline: { blockingMs: stats(inline) },
      offThread: { blockingMs: stats(blocked), latencyMs: stats(latency), eventLoopDelayMaxMs: stats(loopDelayMax) },
    });
  }
  await closeTokenCounterPool();

  console.log(`count-tokens: ~${TARGET_TOKENS} tokens per prompt, ${RUNS} runs each, node ${process.version}`);
  console.table(
    results.flatMap((r) => [
      {
        corpus: r.corpus,
        tokens: r.tokens,
        mode: "inline",
        "blocks loop p50 ms": r.inline.blockingMs.p50,
        "blocks loop max ms": r.inline.blockingMs.max,
        "latency p50 ms": r.inline.blockingMs.p50,
        "latency max ms": r.inline.blockingMs.max,
      },
      {
        corpus: r.corpus,
        tokens: r.tokens,
        mode: "off-thread",
        "blocks loop p50 ms": r.offThread.blockingMs.p50,
        "blocks loop max ms": r.offThread.blockingMs.max,
        "latency p50 ms": r.offThread.latencyMs.p50,
        "latency max ms": r.offThread.latencyMs.max,
      },
    ]),
  );
  console.log(`worker pool cold start (spawn + tokenizer load + first count): ${workerColdStartMs} ms`);

  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(
    OUT,
    `${JSON.stringify({ benchmark: "pricing-count-tokens", date: new Date().toISOString(), node: process.version, targetTokens: TARGET_TOKENS, workerColdStartMs, results }, null, 2)}\n`,
  );
  console.log(`wrote ${OUT}`);
}

await main();
