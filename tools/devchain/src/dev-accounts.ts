import { toHex, type Hex } from "viem";
import { mnemonicToAccount, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";

/**
 * Deterministic local accounts, derived from anvil's well-known dev mnemonic (BIP-44 m/44'/60'/0'/0/i).
 * Public keys, public money: never use them on a real network.
 */
export const ANVIL_DEV_MNEMONIC = "test test test test test test test test test test test junk";

/** Address index of each role; payer wallets take the indices from FIRST_PAYER_INDEX on. */
export const DEV_ACCOUNT_INDEX = {
  /** Creates the token, holds its issuer role and seeds FeeAMM liquidity. Not part of world.json. */
  worldAdmin: 0,
  feePayer: 1,
  payee: 2,
  firstPayer: 3,
} as const;

export interface DevAccount {
  account: PrivateKeyAccount;
  privateKey: Hex;
}

export function devAccount(addressIndex: number): DevAccount {
  const privateKey = toHex(mnemonicToAccount(ANVIL_DEV_MNEMONIC, { addressIndex }).getHdKey().privateKey!);
  return { account: privateKeyToAccount(privateKey), privateKey };
}

export function devPayerAccounts(count: number): DevAccount[] {
  return Array.from({ length: count }, (_, i) => devAccount(DEV_ACCOUNT_INDEX.firstPayer + i));
}
