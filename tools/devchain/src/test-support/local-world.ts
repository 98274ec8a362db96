import { BaseError, createTestClient, decodeErrorResult, encodeFunctionData, http, type Address, type Hex, type Log } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { prepareTransactionRequest, signTransaction } from "viem/actions";
import { Addresses } from "viem/tempo";
import { Session } from "mppx/tempo";
import { channelEscrowAbi, channelEscrowArtifact, createTempoClients, tip20Abi, type TempoClients } from "@worldrouter/chain";
import type { World } from "@worldrouter/config";
import { startAnvil, type RunningAnvil } from "../anvil.js";
import { deployWorld, type DeployWorldOptions } from "../world.js";
import { primeEscrowForOpenTransaction } from "../escrow-open-priming.js";

/** A fresh anvil with the world deployed, for one test file. Tests pay gas in pathUSD so USDC.e balances add up exactly. */
export interface LocalWorld {
  anvil: RunningAnvil;
  world: World;
  clients: TempoClients;
  testClient: ReturnType<typeof createTestClient>;
  payers: PrivateKeyAccount[];
  payee: PrivateKeyAccount;
  stop(): Promise<void>;
}

export async function startLocalWorld(options: DeployWorldOptions = {}): Promise<LocalWorld> {
  const anvil = await startAnvil();
  try {
    const world = await deployWorld(anvil.rpcUrl, options);
    // A loaded CI box can keep anvil's sync send past viem's 10 s default: the tests are about results, not speed.
    const clients = createTempoClients({
      rpcUrl: anvil.rpcUrl,
      chainId: world.chainId,
      feeToken: Addresses.pathUsd,
      transport: http(anvil.rpcUrl, { timeout: 60_000 }),
    });
    return {
      anvil,
      world,
      clients,
      testClient: createTestClient({ mode: "anvil", chain: clients.chain, transport: http(anvil.rpcUrl) }),
      payers: world.wallets.map((w) => privateKeyToAccount(w.privateKey)),
      payee: privateKeyToAccount(world.payee.privateKey),
      stop: () => anvil.stop(),
    };
  } catch (err) {
    await anvil.stop();
    throw err;
  }
}

export type ChannelDescriptor = Session.Precompile.SessionDescriptor;

export const ZERO_ADDRESS: Address = "0x0000000000000000000000000000000000000000";
export const ESCROW_CALL_GAS = 1_500_000n;

/** The parts of a mined receipt the tests look at. */
export interface MinedReceipt {
  logs: Log[];
  blockNumber: bigint;
  transactionHash: Hex;
}

export interface OpenedChannel {
  channelId: Hex;
  descriptor: ChannelDescriptor;
  receipt: MinedReceipt;
}

/** Opens a channel the way mppx does (signed expiring-nonce tx, nonce hash primed, then broadcast). */
export async function openChannel(
  local: LocalWorld,
  request: { payer: PrivateKeyAccount; deposit: bigint; operator?: Address; authorizedSigner?: Address; salt?: Hex },
): Promise<OpenedChannel> {
  const wallet = local.clients.walletClientFor(request.payer);
  const salt = request.salt ?? randomSalt();
  const data = encodeFunctionData({
    abi: channelEscrowAbi,
    functionName: "open",
    args: [
      local.payee.address,
      request.operator ?? ZERO_ADDRESS,
      local.world.token.address,
      request.deposit,
      salt,
      request.authorizedSigner ?? ZERO_ADDRESS,
    ],
  });
  const prepared = await prepareTransactionRequest(wallet, {
    account: request.payer,
    calls: [{ to: local.world.escrow, data }],
    nonceKey: "expiring",
    gas: ESCROW_CALL_GAS,
  });
  const signed = await signTransaction(wallet, prepared);
  const [primed] = await primeEscrowForOpenTransaction(local.anvil.rpcUrl, signed);
  if (!primed) throw new Error("open transaction has no escrow open call");
  const receipt = await local.clients.publicClient.sendRawTransactionSync({ serializedTransaction: signed });
  if (receipt.status !== "success") throw new Error(`open reverted: ${receipt.transactionHash}`);
  return { channelId: primed.channelId, descriptor: primed.descriptor, receipt };
}

/** Signs a voucher with mppx's own helper, exactly as an mppx session client does. */
export function signVoucher(local: LocalWorld, signer: PrivateKeyAccount, channelId: Hex, cumulativeAmount: bigint): Promise<Hex> {
  return Session.Precompile.Voucher.signVoucher(
    local.clients.walletClientFor(signer),
    signer,
    { channelId, cumulativeAmount },
    local.world.escrow,
    local.world.chainId,
  );
}

type EscrowWrite =
  | { functionName: "open"; args: readonly [Address, Address, Address, bigint, Hex, Address] }
  | { functionName: "settle"; args: readonly [ChannelDescriptor, bigint, Hex] }
  | { functionName: "topUp"; args: readonly [ChannelDescriptor, bigint] }
  | { functionName: "close"; args: readonly [ChannelDescriptor, bigint, bigint, Hex] }
  | { functionName: "requestClose"; args: readonly [ChannelDescriptor] }
  | { functionName: "withdraw"; args: readonly [ChannelDescriptor] };

/** Sends an escrow call and waits for its receipt; throws if it reverts. */
export async function writeEscrow(local: LocalWorld, account: PrivateKeyAccount, call: EscrowWrite): Promise<MinedReceipt> {
  const receipt = await local.clients.walletClientFor(account).sendTransactionSync({
    to: local.world.escrow,
    data: encodeFunctionData({ abi: channelEscrowAbi, ...call }),
    gas: ESCROW_CALL_GAS,
  });
  if (receipt.status !== "success") throw new Error(`${call.functionName} reverted: ${receipt.transactionHash}`);
  return receipt;
}

/** Simulates an escrow call (eth_call) and returns the custom error it reverts with; the artifact ABI carries the errors. */
export async function escrowRevertReason(local: LocalWorld, account: PrivateKeyAccount, call: EscrowWrite): Promise<string> {
  try {
    await local.clients.publicClient.call({
      account,
      to: local.world.escrow,
      data: encodeFunctionData({ abi: channelEscrowAbi, ...call }),
    });
  } catch (err) {
    // The node's JSON-RPC error carries the raw revert data.
    const withData = err instanceof BaseError ? err.walk((e) => typeof (e as { data?: unknown }).data === "string") : null;
    const data = (withData as { data?: Hex } | null)?.data;
    if (!data) throw err;
    return decodeErrorResult({ abi: channelEscrowArtifact.abi, data }).errorName;
  }
  throw new Error(`${call.functionName} did not revert`);
}

export function tokenBalance(local: LocalWorld, owner: Address): Promise<bigint> {
  return local.clients.publicClient.readContract({
    address: local.world.token.address,
    abi: tip20Abi,
    functionName: "balanceOf",
    args: [owner],
  });
}

export function channelState(local: LocalWorld, channelId: Hex) {
  return local.clients.publicClient.readContract({
    address: local.world.escrow,
    abi: channelEscrowAbi,
    functionName: "getChannelState",
    args: [channelId],
  });
}

export function randomSalt(): Hex {
  return `0x${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex")}`;
}
