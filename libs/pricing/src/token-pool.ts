/**
 * Off-thread prompt counting. BPE over a ~100k-token prompt blocks the event loop for tens of milliseconds
 * (bench/count-tokens.bench.mjs), which stalls every other request a gateway process is serving; large prompts
 * are therefore tokenized by a small pool of worker threads. The structure of the count (planPromptCount) stays
 * on the calling thread, so both paths return the same number by construction.
 */
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import {
  completePromptCount,
  countTextTokens,
  planPromptCount,
  type ChatMessage,
  type TokenizedModel,
  type ToolDefinition,
} from "./tokens.js";

/** Below this many characters of text (≈ 8k tokens, ~1–2 ms) the round trip to a worker costs more than it saves. */
export const OFF_THREAD_MIN_CHARS = 32_768;

// An eval'd CommonJS worker: it needs no compiled file next to this module (tests run the TypeScript sources) and
// loads the CommonJS build of the same tokenizer.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { countTokens } = require(workerData.tokenizerPath);
const plainText = { disallowedSpecial: new Set() };
parentPort.on("message", ({ id, texts }) => {
  try {
    let tokens = 0;
    for (const text of texts) if (text.length > 0) tokens += countTokens(text, plainText);
    parentPort.postMessage({ id, tokens });
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.message) || error) });
  }
});
`;

interface Job {
  readonly resolve: (tokens: number) => void;
  readonly reject: (error: Error) => void;
}

interface PooledWorker {
  readonly worker: Worker;
  readonly jobs: Map<number, Job>;
}

/** The pool's queue is full, overall or for one client: try again shortly (the gateway answers 503 + Retry-After). */
export class TokenizerBusyError extends Error {
  override readonly name = "TokenizerBusyError";
  constructor(readonly scope: "overall" | "client") {
    super(scope === "overall" ? "the token counter's queue is full" : "this client already has as many prompts being counted as allowed");
  }
}

/** How much counting may wait, in jobs: in all, and per client (so one client cannot fill the queue). */
export interface TokenCounterLimits {
  maxQueued: number;
  maxQueuedPerClient: number;
}

const UNBOUNDED: TokenCounterLimits = { maxQueued: Number.POSITIVE_INFINITY, maxQueuedPerClient: Number.POSITIVE_INFINITY };

export class TokenCounterPool {
  private readonly workers: PooledWorker[] = [];
  private nextJobId = 0;
  private queued = 0;
  private readonly queuedByClient = new Map<string, number>();
  private readonly tokenizerPath = createRequire(import.meta.url).resolve("gpt-tokenizer/encoding/o200k_base");

  constructor(
    readonly size: number = Math.max(1, Math.min(4, availableParallelism() - 1)),
    private readonly limits: TokenCounterLimits = UNBOUNDED,
  ) {}

  /**
   * o200k_base token count of all texts together, computed on a worker thread. Refused at once with
   * TokenizerBusyError when the pool already holds `maxQueued` jobs, or `maxQueuedPerClient` of `client`'s.
   */
  async countTexts(texts: readonly string[], client?: string): Promise<number> {
    if (this.queued >= this.limits.maxQueued) throw new TokenizerBusyError("overall");
    const ofClient = client === undefined ? 0 : (this.queuedByClient.get(client) ?? 0);
    if (ofClient >= this.limits.maxQueuedPerClient) throw new TokenizerBusyError("client");
    this.queued++;
    if (client !== undefined) this.queuedByClient.set(client, ofClient + 1);
    try {
      return await this.run(texts);
    } finally {
      this.queued--;
      if (client !== undefined) {
        const left = (this.queuedByClient.get(client) ?? 1) - 1;
        if (left === 0) this.queuedByClient.delete(client);
        else this.queuedByClient.set(client, left);
      }
    }
  }

  private run(texts: readonly string[]): Promise<number> {
    const slot = this.leastBusy();
    const id = this.nextJobId++;
    return new Promise<number>((resolve, reject) => {
      slot.jobs.set(id, { resolve, reject });
      if (slot.jobs.size === 1) slot.worker.ref();
      slot.worker.postMessage({ id, texts });
    });
  }

  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    await Promise.all(workers.map(({ worker }) => worker.terminate()));
  }

  private leastBusy(): PooledWorker {
    if (this.workers.length < this.size) return this.spawn();
    return this.workers.reduce((best, slot) => (slot.jobs.size < best.jobs.size ? slot : best));
  }

  private spawn(): PooledWorker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { tokenizerPath: this.tokenizerPath } });
    const slot: PooledWorker = { worker, jobs: new Map() };
    worker.unref();
    worker.on("message", (reply: { id: number; tokens?: number; error?: string }) => {
      const job = slot.jobs.get(reply.id);
      if (!job) return;
      slot.jobs.delete(reply.id);
      if (slot.jobs.size === 0) worker.unref();
      if (reply.error === undefined) job.resolve(reply.tokens!);
      else job.reject(new Error(`token counter worker: ${reply.error}`));
    });
    const fail = (error: Error) => {
      const index = this.workers.indexOf(slot);
      if (index >= 0) this.workers.splice(index, 1);
      for (const job of slot.jobs.values()) job.reject(error);
      slot.jobs.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`token counter worker exited with code ${code}`)));
    this.workers.push(slot);
    return slot;
  }
}

let sharedPool: TokenCounterPool | undefined;
let sharedLimits: TokenCounterLimits = UNBOUNDED;

/** Bounds of the shared pool's queue (the gateway sets them from its config at boot); applies to a pool started later. */
export function limitTokenCounterQueue(limits: TokenCounterLimits): void {
  sharedLimits = limits;
}

/**
 * Same result as countPromptTokens, without blocking the event loop on large prompts: small prompts are counted
 * inline, large ones on the shared worker pool (started on first use, threads unref'd while idle).
 */
export async function countPromptTokensOffThread(
  model: TokenizedModel,
  messages: readonly ChatMessage[],
  tools?: readonly ToolDefinition[],
  /** Whose request this is, for the per-client bound of the queue. */
  client?: string,
): Promise<number> {
  const plan = planPromptCount(model, messages, tools);
  let chars = 0;
  for (const text of plan.texts) chars += text.length;
  if (chars >= OFF_THREAD_MIN_CHARS) {
    sharedPool ??= new TokenCounterPool(undefined, sharedLimits);
    return completePromptCount(plan, await sharedPool.countTexts(plan.texts, client));
  }
  let textTokens = 0;
  for (const text of plan.texts) textTokens += countTextTokens(text);
  return completePromptCount(plan, textTokens);
}

/** Stops the shared pool's threads (graceful shutdown, tests). A later count starts a new pool. */
export async function closeTokenCounterPool(): Promise<void> {
  const pool = sharedPool;
  sharedPool = undefined;
  await pool?.close();
}
