import {
  createPublicClient,
  createWalletClient,
  http,
  type Account,
  type Address,
  type PublicClient,
  type Transport,
  type WalletClient,
} from "viem";
import { tempo } from "viem/chains";

export interface TempoClientsOptions {
  rpcUrl: string;
  chainId: number;
  /** TIP-20 token that pays gas by default (the payment token, so accounts need no second balance). */
  feeToken: Address;
  /** Defaults to `http(rpcUrl, { timeout: timeoutMs })`; dev mode passes a wrapped transport (see @worldrouter/devchain). */
  transport?: Transport;
  /** Timeout of one JSON-RPC call (CHAIN_RPC_TIMEOUT_MS); viem's own default (10 s) when unset. */
  timeoutMs?: number;
}

/** viem's `tempo` chain (Tempo formatters, serializers and 0x76 transactions) pointed at our node and fee token. */
export function tempoChain(options: Pick<TempoClientsOptions, "rpcUrl" | "chainId" | "feeToken">) {
  return tempo.extend({
    id: options.chainId,
    rpcUrls: { default: { http: [options.rpcUrl] } },
    feeToken: options.feeToken,
  });
}

export type TempoChain = ReturnType<typeof tempoChain>;

export type TempoPublicClient = PublicClient<Transport, TempoChain>;
export type TempoWalletClient = WalletClient<Transport, TempoChain, Account>;

export interface TempoClients {
  chain: TempoChain;
  publicClient: TempoPublicClient;
  /** A wallet client on the same chain and transport, signing as `account`. */
  walletClientFor(account: Account): TempoWalletClient;
}

export function createTempoClients(options: TempoClientsOptions): TempoClients {
  const chain = tempoChain(options);
  const transport = options.transport ?? http(options.rpcUrl, options.timeoutMs ? { timeout: options.timeoutMs } : {});
  return {
    chain,
    publicClient: createPublicClient({ chain, transport }),
    walletClientFor: (account) => createWalletClient({ account, chain, transport }),
  };
}
