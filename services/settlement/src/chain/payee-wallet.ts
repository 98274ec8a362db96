import { Inject, Injectable } from "@nestjs/common";
import { createTempoClients, tip20Abi } from "@worldrouter/chain";
import type { Config } from "@worldrouter/config";
import { CONFIG } from "@worldrouter/runtime";
import { encodeFunctionData, keccak256, stringToHex, TransactionReceiptNotFoundError, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

// Explicit gas: Tempo-mode estimates are unreliable locally (see docs/local-world.md); a transfer to an
// existing holder needs far less, the unused part is not charged.
const TRANSFER_GAS = 1_000_000n;
// Gas is priced in attodollars (1e-18 USD); TIP-20 stablecoin base units are microdollars (1e-6 USD).
const ATTODOLLARS_PER_BASE_UNIT = 10n ** 12n;

export interface SignedTransfer {
  rawTransaction: Hex;
  txHash: Hex;
  nonce: bigint;
}

export type MinedReceipt = { status: "success" | "reverted"; blockNumber: bigint };

/** What the node said to a broadcast: accepted (or already had it), or the nonce is already used. */
export type BroadcastResult = "accepted" | "nonce-too-low";

/**
 * The payee account's chain access (refunds now; channel settle/close later): signing with an explicit nonce, the
 * account's nonces, simulation, broadcast and receipt lookups by hash. Never waits on the chain: callers decide how
 * often to look. Who may sign when is the caller's business (one signer at a time: see the payee signer lease).
 */
@Injectable()
export class PayeeWallet {
  private readonly clients;
  private readonly account;

  constructor(@Inject(CONFIG) private readonly config: Config) {
    this.clients = createTempoClients({
      rpcUrl: config.chain.rpcUrl,
      chainId: config.chain.chainId,
      feeToken: config.chain.token,
      timeoutMs: config.chain.rpcTimeoutMs,
    });
    this.account = config.chain.payeePrivateKey ? privateKeyToAccount(config.chain.payeePrivateKey) : undefined;
  }

  private signer() {
    if (!this.account) throw new Error("PAYEE_PRIVATE_KEY is not configured: settlement cannot send transactions");
    return this.account;
  }

  private transferCall(to: Hex, amount: bigint, reason: string) {
    return {
      to: this.config.chain.token,
      data: encodeFunctionData({ abi: tip20Abi, functionName: "transferWithMemo", args: [to, amount, keccak256(stringToHex(reason))] }),
    };
  }

  /**
   * What sending this transfer would cost the payee in token base units: the chain's gas estimate at its current gas
   * price (gas is paid in the payment token).
   */
  async transferFee(to: Hex, amount: bigint, reason: string): Promise<bigint> {
    const [gas, gasPrice] = await Promise.all([
      this.clients.publicClient.estimateGas({ account: this.signer(), ...this.transferCall(to, amount, reason) }),
      this.clients.publicClient.getGasPrice(),
    ]);
    return (gas * gasPrice + ATTODOLLARS_PER_BASE_UNIT - 1n) / ATTODOLLARS_PER_BASE_UNIT;
  }

  /** Runs the transfer against the latest state (eth_call): throws with the node's reason if it would revert. */
  async simulateTransfer(to: Hex, amount: bigint, reason: string): Promise<void> {
    await this.clients.publicClient.call({ account: this.signer(), ...this.transferCall(to, amount, reason) });
  }

  /** The next nonce counting transactions the node holds unmined: what a new transaction must use. */
  pendingNonce(): Promise<bigint> {
    return this.clients.publicClient.getTransactionCount({ address: this.signer().address, blockTag: "pending" }).then(BigInt);
  }

  /** Nonces below this are used by mined transactions: a stored transaction with a lower one was mined or never will be. */
  minedNonce(): Promise<bigint> {
    return this.clients.publicClient.getTransactionCount({ address: this.signer().address, blockTag: "latest" }).then(BigInt);
  }

  /** Signs a TIP-20 `transferWithMemo` from the payee with `nonce`; the memo names why (e.g. `refund:<paymentId>`). */
  async signTokenTransfer(to: Hex, amount: bigint, reason: string, nonce: bigint): Promise<SignedTransfer> {
    const wallet = this.clients.walletClientFor(this.signer());
    const request = await wallet.prepareTransactionRequest({
      ...this.transferCall(to, amount, reason),
      gas: TRANSFER_GAS,
      nonce: Number(nonce),
    } as never);
    const rawTransaction = (await wallet.signTransaction(request as never)) as Hex;
    return { rawTransaction, txHash: keccak256(rawTransaction), nonce };
  }

  /** Idempotent: re-sending a transaction the node already has is `accepted`. Other node errors are thrown. */
  async broadcast(rawTransaction: Hex): Promise<BroadcastResult> {
    try {
      await this.clients.publicClient.sendRawTransaction({ serializedTransaction: rawTransaction });
      return "accepted";
    } catch (err) {
      const message = (err as Error).message;
      if (/already known|known transaction|already imported/i.test(message)) return "accepted";
      if (/nonce too low|nonce has already been used|invalid nonce/i.test(message)) return "nonce-too-low";
      throw err;
    }
  }

  /** The receipt if the transaction is mined, else null (one lookup; RPC failures are thrown). */
  async receipt(txHash: Hex): Promise<MinedReceipt | null> {
    try {
      const receipt = await this.clients.publicClient.getTransactionReceipt({ hash: txHash });
      if (receipt.status === "pending") return null;
      return { status: receipt.status, blockNumber: receipt.blockNumber };
    } catch (err) {
      if (err instanceof TransactionReceiptNotFoundError) return null;
      throw err;
    }
  }
}
