import type { Address } from "viem";
import { Session } from "mppx/tempo";

/** Tempo mainnet: the chain the gateway is paid on in production. */
export const TEMPO_MAINNET_CHAIN_ID = 4217;

/** Bridged USDC (USDC.e) on Tempo mainnet: the token users pay with. TIP-20 tokens always have 6 decimals. */
export const USDC_E_ADDRESS: Address = "0x20C000000000000000000000b9537d11c60E8b50";
export const USDC_E_DECIMALS = 6;

/** TIP-1034 channel escrow precompile; locally our stand-in contract is installed at the same address. */
export const CHANNEL_ESCROW_ADDRESS: Address = Session.Precompile.Constants.tip20ChannelEscrow;

/** Seconds between a payer's `requestClose` and the earliest `withdraw` (TIP-1034). */
export const CHANNEL_CLOSE_GRACE_PERIOD_SECONDS = 900n;
