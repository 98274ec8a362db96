/**
 * A small JSON-RPC client for the hot path: keep-alive connections (undici Pool), one POST per call, the
 * chain id known from config (no eth_chainId round trips), receipts parsed into just the fields we check.
 */
import { Pool } from "undici";

type Hex = `0x${string}`;

export interface ChainRpcClientOptions {
  url: string;
  /** Per call: a call that has not answered by then fails with ChainRpcTransportError. */
  timeoutMs: number;
  /** Keep-alive connections to the node (default 16). */
  connections?: number;
}

/** The node answered with a JSON-RPC error object: it refused the call. */
export class JsonRpcError extends Error {
  override readonly name = "JsonRpcError";
  constructor(
    readonly method: string,
    readonly code: number,
    message: string,
    readonly data: unknown,
  ) {
    super(`${method} failed: ${message} (code ${code})`);
  }
}

/** No usable answer (connection, timeout, HTTP status, malformed body): the outcome of the call is unknown. */
export class ChainRpcTransportError extends Error {
  override readonly name = "ChainRpcTransportError";
}

export interface RpcLog {
  address: Hex;
  topics: Hex[];
  data: Hex;
}

export interface ChainReceipt {
  transactionHash: Hex;
  status: "success" | "reverted";
  /** The sender (lowercase); under sponsorship, not the fee payer. */
  from: Hex;
  blockNumber: bigint;
  logs: RpcLog[];
}

const HEADERS = { "content-type": "application/json" };

export class ChainRpcClient {
  private readonly pool: Pool;
  private readonly path: string;
  private nextId = 1;

  constructor(options: ChainRpcClientOptions) {
    const url = new URL(options.url);
    this.path = `${url.pathname}${url.search}`;
    this.pool = new Pool(url.origin, {
      connections: options.connections ?? 16,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  }

  async request<T>(method: string, params: readonly unknown[]): Promise<T> {
    const body = JSON.stringify({ jsonrpc: "2.0", id: this.nextId++, method, params });
    let statusCode: number;
    let text: string;
    try {
      const response = await this.pool.request({ path: this.path, method: "POST", headers: HEADERS, body });
      statusCode = response.statusCode;
      text = await response.body.text();
    } catch (err) {
      throw new ChainRpcTransportError(`${method}: ${(err as Error).message}`, { cause: err });
    }
    let message: { result?: T; error?: { code?: unknown; message?: unknown; data?: unknown } };
    try {
      message = JSON.parse(text);
    } catch {
      throw new ChainRpcTransportError(`${method}: HTTP ${statusCode} with a body that is not JSON`);
    }
    if (message?.error) {
      const { code, message: detail, data } = message.error;
      throw new JsonRpcError(method, typeof code === "number" ? code : 0, typeof detail === "string" ? detail : "unknown error", data);
    }
    if (statusCode !== 200 || !message || !("result" in message))
      throw new ChainRpcTransportError(`${method}: HTTP ${statusCode} without a JSON-RPC result`);
    return message.result as T;
  }

  /** `eth_call` at the latest block; resolves with the return data, rejects with JsonRpcError on a revert. */
  call(request: { from: Hex; to: Hex; data: Hex }): Promise<Hex> {
    return this.request<Hex>("eth_call", [request, "latest"]);
  }

  /** `eth_sendRawTransactionSync`: broadcasts and answers with the receipt once the transaction is in a block. */
  async sendRawTransactionSync(serialized: Hex): Promise<ChainReceipt> {
    return parseReceipt("eth_sendRawTransactionSync", await this.request<unknown>("eth_sendRawTransactionSync", [serialized]));
  }

  /** The receipt of a mined transaction, undefined when the node knows no such (mined) transaction. */
  async getTransactionReceipt(hash: Hex): Promise<ChainReceipt | undefined> {
    const json = await this.request<unknown>("eth_getTransactionReceipt", [hash]);
    return json === null ? undefined : parseReceipt("eth_getTransactionReceipt", json);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

const HASH = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const QUANTITY = /^0x[0-9a-fA-F]{1,64}$/;

function parseReceipt(method: string, json: unknown): ChainReceipt {
  const receipt = json as Record<string, unknown> | null;
  const fail = (what: string): never => {
    throw new ChainRpcTransportError(`${method}: malformed receipt (${what})`);
  };
  if (typeof receipt !== "object" || receipt === null) return fail("not an object");
  const { transactionHash, status, from, blockNumber, logs } = receipt;
  if (typeof transactionHash !== "string" || !HASH.test(transactionHash)) fail("transactionHash");
  if (status !== "0x1" && status !== "0x0") fail("status");
  if (typeof from !== "string" || !ADDRESS.test(from)) fail("from");
  if (typeof blockNumber !== "string" || !QUANTITY.test(blockNumber)) fail("blockNumber");
  if (!Array.isArray(logs)) return fail("logs");
  for (const log of logs as Record<string, unknown>[]) {
    if (typeof log?.address !== "string" || !Array.isArray(log.topics) || typeof log.data !== "string") fail("log");
  }
  return {
    transactionHash: (transactionHash as string).toLowerCase() as Hex,
    status: status === "0x1" ? "success" : "reverted",
    from: (from as string).toLowerCase() as Hex,
    blockNumber: BigInt(blockNumber as string),
    logs: logs as RpcLog[],
  };
}
