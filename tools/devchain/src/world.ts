import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { createTestClient, http, keccak256, maxUint256, parseUnits, stringToHex, type Address, type Hex } from "viem";
import { Actions, Addresses } from "viem/tempo";
import {
  CHANNEL_ESCROW_ADDRESS,
  TEMPO_MAINNET_CHAIN_ID,
  channelEscrowArtifact,
  createTempoClients,
  tip20Abi,
  type TempoClients,
  type TempoWalletClient,
} from "@worldrouter/chain";
import { World } from "@worldrouter/config";
import { DEV_ACCOUNT_INDEX, devAccount, devPayerAccounts, type DevAccount } from "./dev-accounts.js";

/**
 * Sets up the local world on a fresh Tempo-mode anvil: a USDC.e stand-in token, funded wallets, FeeAMM
 * liquidity so fees can be paid in that token, and the channel escrow stand-in at the precompile address.
 */

export interface DeployWorldOptions {
  /** Number of funded payer wallets (default 5). */
  payerCount?: number;
  /** Minted to every payer wallet, the fee payer and the payee, in base units (default 1,000 USDC.e). */
  walletBalance?: bigint;
}

export const WORLD_TOKEN = { name: "USDC.e", symbol: "USDC.e", currency: "USD", decimals: 6 } as const;
/** Fixed salt + fixed admin: the token gets the same address on every fresh chain. */
const WORLD_TOKEN_SALT: Hex = keccak256(stringToHex("worldrouter/devchain/USDC.e"));
/** Where the local USDC.e lands on a fresh chain (follows from the admin account and WORLD_TOKEN_SALT). */
export const LOCAL_USDC_E_ADDRESS: Address = "0x20c000000000000000000000e9343992dac325b3";
/** Validator tokens anvil's tempo genesis funds dev accounts with; fees in USDC.e are swapped into them. */
export const ALPHA_USD_ADDRESS: Address = "0x20c0000000000000000000000000000000000001";
const FEE_AMM_VALIDATOR_TOKENS: readonly Address[] = [Addresses.pathUsd, ALPHA_USD_ADDRESS];
const FEE_AMM_LIQUIDITY_PER_POOL = parseUnits("1000000", 6);
const DEFAULT_WALLET_BALANCE = parseUnits("1000", 6);

// Explicit gas on every setup tx: anvil's tempo-mode estimates are unreliable (token creation ran out of gas).
// Generous on purpose; new storage slots cost 250k gas each from T1 on (TIP-1000).
const GAS = {
  createToken: 6_000_000n,
  grantIssuer: 1_000_000n,
  mintPerRecipient: 600_000n,
  feeAmmMintPerPool: 2_000_000n,
  approveEscrow: 1_000_000n,
} as const;

export async function deployWorld(rpcUrl: string, options: DeployWorldOptions = {}): Promise<World> {
  const payers = devPayerAccounts(options.payerCount ?? 5);
  const walletBalance = options.walletBalance ?? DEFAULT_WALLET_BALANCE;
  const feePayer = devAccount(DEV_ACCOUNT_INDEX.feePayer);
  const payee = devAccount(DEV_ACCOUNT_INDEX.payee);
  const admin = devAccount(DEV_ACCOUNT_INDEX.worldAdmin).account;

  // The admin pays its set-up fees in pathUSD (anvil funds it); USDC.e has no FeeAMM liquidity yet.
  const adminClients = createTempoClients({ rpcUrl, chainId: TEMPO_MAINNET_CHAIN_ID, feeToken: Addresses.pathUsd });
  const adminWallet = adminClients.walletClientFor(admin);

  const { token } = await Actions.token.createSync(adminWallet, {
    name: WORLD_TOKEN.name,
    symbol: WORLD_TOKEN.symbol,
    currency: WORLD_TOKEN.currency,
    admin,
    salt: WORLD_TOKEN_SALT,
    gas: GAS.createToken,
  });
  await Actions.token.grantRolesSync(adminWallet, { token, roles: ["issuer"], to: admin.address, gas: GAS.grantIssuer });

  const recipients = [...payers, feePayer, payee].map((w) => w.account.address);
  await sendBatchSync(adminWallet, {
    calls: recipients.map((to) => Actions.token.mint.call({ token, to, amount: walletBalance })),
    gas: GAS.mintPerRecipient * BigInt(recipients.length),
  });
  await sendBatchSync(adminWallet, {
    calls: FEE_AMM_VALIDATOR_TOKENS.map((validatorTokenAddress) =>
      Actions.amm.mint.call({
        userTokenAddress: token,
        validatorTokenAddress,
        validatorTokenAmount: FEE_AMM_LIQUIDITY_PER_POOL,
        to: admin.address,
      }),
    ),
    gas: GAS.feeAmmMintPerPool * BigInt(FEE_AMM_VALIDATOR_TOKENS.length),
  });

  const testClient = createTestClient({ mode: "anvil", chain: adminClients.chain, transport: http(rpcUrl) });
  await testClient.setCode({ address: CHANNEL_ESCROW_ADDRESS, bytecode: channelEscrowArtifact.deployedBytecode });

  // The stand-in pulls deposits with transferFrom (the precompile needs no approval). The fee payer sponsors
  // these set-up fees in pathUSD, so every USDC.e balance stays exactly `walletBalance`.
  await approveEscrowForPayers(adminClients, token, payers, feePayer);

  const balances = await Promise.all(
    payers.map((p) =>
      adminClients.publicClient.readContract({ address: token, abi: tip20Abi, functionName: "balanceOf", args: [p.account.address] }),
    ),
  );
  return World.parse({
    rpcUrl,
    chainId: TEMPO_MAINNET_CHAIN_ID,
    token: { address: token, decimals: WORLD_TOKEN.decimals, symbol: WORLD_TOKEN.symbol, name: WORLD_TOKEN.name },
    escrow: CHANNEL_ESCROW_ADDRESS,
    feePayer: { address: feePayer.account.address, privateKey: feePayer.privateKey },
    payee: { address: payee.account.address, privateKey: payee.privateKey },
    wallets: payers.map((p, i) => ({ address: p.account.address, privateKey: p.privateKey, balance: balances[i]!.toString() })),
  });
}

async function approveEscrowForPayers(clients: TempoClients, token: Address, payers: DevAccount[], feePayer: DevAccount) {
  await Promise.all(
    payers.map(({ account }) =>
      Actions.token.approveSync(clients.walletClientFor(account), {
        token,
        spender: CHANNEL_ESCROW_ADDRESS,
        amount: maxUint256,
        feePayer: feePayer.account,
        gas: GAS.approveEscrow,
      }),
    ),
  );
}

/** One Tempo (0x76) transaction carrying several calls, waited for synchronously. */
async function sendBatchSync(wallet: TempoWalletClient, request: { calls: readonly { to: Address; data: Hex }[]; gas: bigint }) {
  const receipt = await wallet.sendTransactionSync({ calls: request.calls, gas: request.gas });
  if (receipt.status !== "success") throw new Error(`world set-up transaction ${receipt.transactionHash} reverted`);
  return receipt;
}

export function writeWorldFile(path: string, world: World): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(World.parse(world), null, 2)}\n`);
}
