import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChainRpcClient, ChainRpcTransportError, JsonRpcError } from "./chain-rpc-client.js";

/** A JSON-RPC endpoint over real HTTP whose answer each test sets. */
let answer: (body: { method: string; params: unknown[]; id: number }, res: ServerResponse) => void;
let server: Server;
let url: string;
const received: { method: string; params: unknown[] }[] = [];
beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = "";
    req.on("data", (chunk) => (text += chunk));
    req.on("end", () => {
      const body = JSON.parse(text);
      received.push(body);
      answer(body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rpc?key=1`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const reply =
  (payload: unknown, status = 200) =>
  (body: { id: number }, res: ServerResponse) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(typeof payload === "function" ? payload(body) : payload));
  };
const receipt = {
  transactionHash: `0x${"Ab".repeat(32)}`,
  status: "0x1",
  from: `0x${"Cd".repeat(20)}`,
  blockNumber: "0x1b",
  logs: [{ address: `0x${"11".repeat(20)}`, topics: [`0x${"22".repeat(32)}`], data: "0x" }],
  gasUsed: "0x5208",
};

describe("ChainRpcClient (real HTTP)", () => {
  it("posts JSON-RPC to the URL's path and parses receipts into the fields we check", async () => {
    const client = new ChainRpcClient({ url, timeoutMs: 2_000 });
    answer = reply((body: { id: number }) => ({ jsonrpc: "2.0", id: body.id, result: receipt }));
    expect(await client.sendRawTransactionSync("0x76c0")).toEqual({
      transactionHash: `0x${"ab".repeat(32)}`,
      status: "success",
      from: `0x${"cd".repeat(20)}`,
      blockNumber: 27n,
      logs: receipt.logs,
    });
    expect(received.at(-1)).toMatchObject({ jsonrpc: "2.0", method: "eth_sendRawTransactionSync", params: ["0x76c0"] });
    answer = reply((body: { id: number }) => ({ jsonrpc: "2.0", id: body.id, result: null }));
    expect(await client.getTransactionReceipt(`0x${"ab".repeat(32)}`)).toBeUndefined();
    answer = reply((body: { id: number }) => ({ jsonrpc: "2.0", id: body.id, result: "0x01" }));
    expect(await client.call({ from: `0x${"cd".repeat(20)}`, to: `0x${"11".repeat(20)}`, data: "0x1234" })).toBe("0x01");
    expect(received.at(-1)).toMatchObject({
      method: "eth_call",
      params: [{ from: `0x${"cd".repeat(20)}`, to: `0x${"11".repeat(20)}`, data: "0x1234" }, "latest"],
    });
    await client.close();
  });

  it("a JSON-RPC error object is a JsonRpcError with the node's code and message", async () => {
    const client = new ChainRpcClient({ url, timeoutMs: 2_000 });
    answer = reply((body: { id: number }) => ({
      jsonrpc: "2.0",
      id: body.id,
      error: { code: 3, message: "execution reverted", data: "0xdead" },
    }));
    const error = await client.call({ from: `0x${"cd".repeat(20)}`, to: `0x${"11".repeat(20)}`, data: "0x" }).catch((err) => err);
    expect(error).toBeInstanceOf(JsonRpcError);
    expect(error).toMatchObject({ code: 3, data: "0xdead", message: "eth_call failed: execution reverted (code 3)" });
    await client.close();
  });

  it("HTTP errors, non-JSON bodies, malformed receipts and timeouts are transport errors", async () => {
    const client = new ChainRpcClient({ url, timeoutMs: 300 });
    answer = reply({ oops: true }, 502);
    await expect(client.getTransactionReceipt(`0x${"ab".repeat(32)}`)).rejects.toThrow(/HTTP 502 without a JSON-RPC result/);
    answer = (_body, res) => res.end("<html>");
    await expect(client.getTransactionReceipt(`0x${"ab".repeat(32)}`)).rejects.toThrow(ChainRpcTransportError);
    answer = reply((body: { id: number }) => ({ jsonrpc: "2.0", id: body.id, result: { ...receipt, status: "0x2" } }));
    await expect(client.sendRawTransactionSync("0x76c0")).rejects.toThrow(/malformed receipt \(status\)/);
    answer = () => {}; // never answers
    await expect(client.sendRawTransactionSync("0x76c0")).rejects.toThrow(ChainRpcTransportError);
    await client.close();
  });
});
