import { tempoChain, tip20Abi, decodeTempoTransaction, type ChainReceipt, type TempoTransaction } from "@worldrouter/chain";
import { PaymentErrors } from "@worldrouter/mpp";
import {
  concat,
  createClient,
  custom,
  encodeAbiParameters,
  encodeEventTopics,
  encodeFunctionData,
  keccak256,
  maxUint256,
  numberToHex,
  stringToHex,
  toHex,
  type Hex,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { signTransaction } from "viem/actions";
import { beforeAll, describe, expect, it } from "vitest";
import {
  assertChargeTransferLogged,
  checkSponsoredTransfer,
  parseCredentialSource,
  type ChargeExpectation,
  type SponsorPolicy,
} from "./charge-transfer.js";

const TOKEN: Hex = "0x20c000000000000000000000e9343992dac325b3";
const PAYEE: Hex = "0x00000000000000000000000000000000000000aa";
const NOW = Date.parse("2026-11-25T12:00:00Z");
const expected: ChargeExpectation = {
  token: TOKEN,
  payee: PAYEE,
  amount: 1234n,
  chainId: 4217,
  realm: "api.example:443",
  challengeId: "challenge-1",
  challengeExpiresAt: NOW + 300_000,
};
const policy: SponsorPolicy = { feeToken: TOKEN, maxGas: 2_000_000n, maxFeePerGas: 100_000_000_000n, maxTotalFee: 50_000_000_000_000_000n };
const sender = privateKeyToAccount(generatePrivateKey());

/** MPP attribution memo (PROTOCOL.md), as mppx's client writes it. */
const memoFor = (realm: string, challengeId: string): Hex => {
  const fingerprint = (value: string, bytes: number) => keccak256(stringToHex(value)).slice(0, 2 + bytes * 2) as Hex;
  return concat(["0xef1ed712", "0x01", fingerprint(realm, 10), toHex(0, { size: 10 }), fingerprint(challengeId, 7)]);
};
const transferWithMemo = (to: Hex, amount: bigint, memo: Hex) =>
  encodeFunctionData({ abi: tip20Abi, functionName: "transferWithMemo", args: [to, amount, memo] });

const client = createClient({
  chain: tempoChain({ rpcUrl: "http://127.0.0.1:1", chainId: 4217, feeToken: TOKEN }),
  transport: custom({
    request: async ({ method }) => (method === "eth_chainId" ? numberToHex(4217) : Promise.reject(new Error(`unexpected ${method}`))),
  }),
});

/** The 0x78 envelope an mppx client sends for `expected`, decoded. */
let valid: TempoTransaction;
beforeAll(async () => {
  valid = decodeTempoTransaction(
    await signTransaction(client, {
      account: sender,
      chainId: 4217,
      calls: [{ to: TOKEN, data: transferWithMemo(PAYEE, 1234n, memoFor(expected.realm, expected.challengeId)) }],
      gas: 600_000n,
      maxFeePerGas: 24_000_000_000n,
      maxPriorityFeePerGas: 0n,
      nonceKey: maxUint256,
      nonce: 0,
      validBefore: Math.floor(NOW / 1000) + 25,
      feePayer: true,
    } as never),
  );
});

const check = (overrides: Partial<TempoTransaction>) => () => checkSponsoredTransfer({ ...valid, ...overrides }, expected, policy, NOW);
const withCall = (to: Hex, data: Hex, value = 0n): Partial<TempoTransaction> => ({ calls: [{ to, data, value }] });

describe("checkSponsoredTransfer (mppx's sponsored-charge rules)", () => {
  it("accepts the envelope mppx's client builds and returns its transfer", () => {
    expect(checkSponsoredTransfer(valid, expected, policy, NOW)).toEqual({
      to: PAYEE,
      amount: 1234n,
      memo: memoFor(expected.realm, expected.challengeId),
    });
    expect(checkSponsoredTransfer({ ...valid, feeToken: TOKEN }, expected, policy, NOW).amount).toBe(1234n);
    // validAfter in the past, or a few seconds ahead (clock skew), is payable now.
    expect(checkSponsoredTransfer({ ...valid, validAfter: Math.floor(NOW / 1000) - 60 }, expected, policy, NOW).amount).toBe(1234n);
    expect(checkSponsoredTransfer({ ...valid, validAfter: Math.floor(NOW / 1000) + 5 }, expected, policy, NOW).amount).toBe(1234n);
  });

  it("names the rule a transaction breaks", () => {
    const memo = memoFor(expected.realm, expected.challengeId);
    const cases: [Partial<TempoTransaction>, RegExp][] = [
      [{ type: 0x76, feePayer: { kind: "none" } }, /not fee-sponsored/],
      [{ feePayer: { kind: "signed", signature: { r: 1n, s: 1n, yParity: 0 } } }, /already carries a fee payer signature/],
      [{ signature: undefined }, /not signed by its sender/],
      [{ chainId: 1 }, /for chain 1, not 4217/],
      [{ hasKeyAuthorization: true }, /key authorizations are not accepted/],
      [{ hasAuthorizationList: true }, /authorization lists are not accepted/],
      [{ accessList: [{ address: TOKEN, storageKeys: [] }] }, /access list is not accepted/],
      [{ calls: [valid.calls[0]!, valid.calls[0]!] }, /exactly one call .* got 2/],
      [withCall("0x20c0000000000000000000000000000000000000", valid.calls[0]!.data), /not the payment token/],
      [withCall(TOKEN, valid.calls[0]!.data, 1n), /native value/],
      [
        withCall(TOKEN, encodeFunctionData({ abi: tip20Abi, functionName: "transfer", args: [PAYEE, 1234n] })),
        /not a canonically encoded transferWithMemo/,
      ],
      [withCall(TOKEN, `${valid.calls[0]!.data}00`), /not a canonically encoded transferWithMemo/],
      [withCall(TOKEN, transferWithMemo("0x00000000000000000000000000000000000000bb", 1234n, memo)), /pays 0x0{38}bb, not the payee/],
      [withCall(TOKEN, transferWithMemo(PAYEE, 1233n, memo)), /for 1233 base units, the challenge asks for 1234/],
      [withCall(TOKEN, transferWithMemo(PAYEE, 1234n, memoFor(expected.realm, "challenge-2"))), /memo is not bound to this challenge/],
      [
        withCall(TOKEN, transferWithMemo(PAYEE, 1234n, memoFor("other.example", expected.challengeId))),
        /memo is not bound to this challenge/,
      ],
      [{ feeToken: "0x20c0000000000000000000000000000000000001" }, /fee token 0x20c0{36}1 is not accepted; the sponsor pays gas in/],
      [{ gas: 0n }, /must declare gas/],
      [{ gas: 2_000_001n }, /gas 2000001 exceeds the sponsor's limit/],
      [{ maxFeePerGas: 0n }, /must declare maxFeePerGas/],
      [{ maxFeePerGas: 100_000_000_001n }, /maxFeePerGas 100000000001 exceeds/],
      [{ gas: 2_000_000n, maxFeePerGas: 30_000_000_000n }, /gas × maxFeePerGas = 60000000000000000 exceeds/],
      [{ maxPriorityFeePerGas: 25_000_000_000n }, /maxPriorityFeePerGas exceeds maxFeePerGas/],
      [
        { maxFeePerGas: 50_000_000_000n, maxPriorityFeePerGas: 20_000_000_000n },
        /maxPriorityFeePerGas 20000000000 exceeds the sponsor's limit/,
      ],
      [{ nonceKey: 5n }, /expiring nonce/],
      [{ validBefore: undefined }, /must declare validBefore/],
      [{ validBefore: Math.floor(NOW / 1000) }, /expired/],
      [{ validBefore: Math.floor(NOW / 1000) + 361 }, /later than the sponsor allows/],
      [{ validAfter: Math.floor(NOW / 1000) + 6 }, /not valid before \d+; a charge must be payable now/],
    ];
    for (const [overrides, message] of cases) {
      expect(check(overrides), String(message)).toThrow(PaymentErrors.VerificationFailedError);
      expect(check(overrides), String(message)).toThrow(message);
    }
  });
});

describe("assertChargeTransferLogged (mppx's log checks)", () => {
  const from = sender.address.toLowerCase() as Hex;
  const log = (event: "Transfer" | "TransferWithMemo", args: { from: Hex; to: Hex; memo?: Hex }, amount: bigint, address: Hex = TOKEN) => ({
    address,
    topics: encodeEventTopics({ abi: tip20Abi, eventName: event, args } as never) as Hex[],
    data: encodeAbiParameters([{ type: "uint256" }], [amount]),
  });
  const receiptWith = (logs: ChainReceipt["logs"], status: ChainReceipt["status"] = "success"): ChainReceipt => ({
    transactionHash: `0x${"ab".repeat(32)}`,
    status,
    from,
    blockNumber: 7n,
    logs,
  });
  const memo = memoFor(expected.realm, expected.challengeId);
  const paid = log("TransferWithMemo", { from, to: PAYEE, memo }, 1234n);

  it("accepts a receipt with the bound TransferWithMemo (alongside its Transfer twin and unrelated logs)", () => {
    expect(() =>
      assertChargeTransferLogged(receiptWith([log("Transfer", { from, to: PAYEE }, 1234n), paid]), expected, from),
    ).not.toThrow();
    expect(() =>
      assertChargeTransferLogged(
        receiptWith([log("Transfer", { from, to: PAYEE }, 5n, "0x20c0000000000000000000000000000000000000"), paid]),
        expected,
        from,
      ),
    ).not.toThrow();
  });

  it("refuses reverted receipts and transfers that differ in any way", () => {
    const refused: ChainReceipt[] = [
      receiptWith([paid], "reverted"),
      receiptWith([]),
      receiptWith([log("Transfer", { from, to: PAYEE }, 1234n)]),
      receiptWith([log("TransferWithMemo", { from, to: PAYEE, memo }, 1234n, "0x20c0000000000000000000000000000000000000")]),
      receiptWith([log("TransferWithMemo", { from: PAYEE, to: PAYEE, memo }, 1234n)]),
      receiptWith([log("TransferWithMemo", { from, to: from, memo }, 1234n)]),
      receiptWith([log("TransferWithMemo", { from, to: PAYEE, memo }, 1233n)]),
      receiptWith([log("TransferWithMemo", { from, to: PAYEE, memo: memoFor(expected.realm, "challenge-2") }, 1234n)]),
    ];
    for (const receipt of refused)
      expect(() => assertChargeTransferLogged(receipt, expected, from)).toThrow(PaymentErrors.VerificationFailedError);
    expect(() => assertChargeTransferLogged(receiptWith([paid], "reverted"), expected, from)).toThrow(/reverted/);
    expect(() => assertChargeTransferLogged(receiptWith([]), expected, from)).toThrow(/no TransferWithMemo of 1234 base units/);
  });
});

describe("parseCredentialSource", () => {
  it("reads did:pkh:eip155 sources on our chain, like mppx", () => {
    expect(parseCredentialSource(undefined, 4217)).toBeUndefined();
    expect(parseCredentialSource(`did:pkh:eip155:4217:${sender.address}`, 4217)).toBe(sender.address.toLowerCase());
    for (const bad of [
      `did:pkh:eip155:1:${sender.address}`,
      `did:pkh:eip155:04217:${sender.address}`,
      "did:pkh:eip155:4217:0x1234",
      `did:key:${sender.address}`,
    ]) {
      expect(() => parseCredentialSource(bad, 4217)).toThrow(/credential source is not a did:pkh:eip155 address on this chain/);
    }
  });
});
