import { Inject, Injectable } from "@nestjs/common";
import { createTempoClients, tip20Abi } from "@worldrouter/chain";
import type { Config } from "@worldrouter/config";
import { CONFIG } from "@worldrouter/runtime";
import { encodeFunctionData, keccak256, stringToHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

// Explicit gas: Tempo-mode estimates are unreliable locally (see docs/local-world.md); a transfer to an
// existing holder needs far less, the unused part is not charged.
const TRANSFER_GAS = 1_000_000n;

/**
 * The payee account's chain writes (refunds now; channel settle/close later). Transactions are signed first
 * and persisted by the caller, then broadcast, so a retry after a crash re-sends the same transaction
 * instead of paying twice.
 */
@Injectable()
export class PayeeWallet {
  private readonly clients;
  private readonly account;

  constructor(@Inject(CONFIG) private readonly config: Config) {
    this.clients = createTempoClients({ rpcUrl: config.chain.rpcUrl, chainId: config.chain.chainId, feeToken: config.chain.token });
    this.account = config.chain.payeePrivateKey ? privateKeyToAccount(config.chain.payeePrivateKey) : undefined;
  }

  /** Signs a TIP-20 `transferWithMemo` from the payee; the memo names why (e.g. `refund:<paymentId>`). */
  async signTokenTransfer(to: Hex, amount: bigint, reason: string): Promise<{ rawTransaction: Hex; txHash: Hex }> {
    if (!this.account) throw new Error("PAYEE_PRIVATE_KEY is not configured: settlement cannot send transactions");
    const wallet = this.clients.walletClientFor(this.account);
    const memo = keccak256(stringToHex(reason));
    const request = await wallet.prepareTransactionRequest({
      to: this.config.chain.token,
      data: encodeFunctionData({ abi: tip20Abi, functionName: "transferWithMemo", args: [to, amount, memo] }),
      gas: TRANSFER_GAS,
    } as never);
    const rawTransaction = (await wallet.signTransaction(request as never)) as Hex;
    return { rawTransaction, txHash: keccak256(rawTransaction) };
  }

  /** Broadcasts (idempotently: an already-known tx is just awaited) and waits for the receipt. */
  async broadcast(rawTransaction: Hex, txHash: Hex): Promise<{ status: string; blockNumber: bigint }> {
    const existing = await this.clients.publicClient.getTransactionReceipt({ hash: txHash }).catch(() => undefined);
    if (existing) return existing;
    try {
      await this.clients.publicClient.sendRawTransaction({ serializedTransaction: rawTransaction });
    } catch (err) {
      if (!/already known|known transaction|nonce too low/i.test((err as Error).message)) throw err;
    }
    return this.clients.publicClient.waitForTransactionReceipt({ hash: txHash, timeout: 60_000 });
  }
}
