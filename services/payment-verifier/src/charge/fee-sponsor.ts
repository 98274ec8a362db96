import {
  addressOfPrivateKey,
  bytesToHex,
  feePayerSignPayload,
  hexToBytes,
  keccak256,
  serializeSponsoredTransaction,
  signDigest,
  type TempoTransaction,
} from "@worldrouter/chain";

type Hex = `0x${string}`;

export interface SponsoredTransaction {
  serialized: Hex;
  /** keccak256 of `serialized`: the hash the node reports. */
  hash: Hex;
}

/**
 * The fee payer: co-signs a sender's transaction (native secp256k1, paying gas in `feeToken`) and limits how many
 * sponsored transactions this process has in flight.
 *
 * Why a per-process cap and not mppx's shared SponsorBudget (3 WATCH/MULTI round trips to Redis per charge):
 * the sponsor only loses gas on a transaction that is mined but reverts, and every sponsored transaction here
 * has passed the per-transaction policy (gas × maxFeePerGas ≤ SPONSOR_MAX_TOTAL_FEE), paid a claimed
 * challenge's exact amount and been simulated just before broadcast. What stays at risk is the window
 * between simulation and inclusion, so the exposure is bounded by the transactions in that window:
 * at most SPONSOR_MAX_IN_FLIGHT × SPONSOR_MAX_TOTAL_FEE per verifier process, with no shared state.
 */
export class FeeSponsor {
  readonly address: Hex;
  private readonly privateKey: Uint8Array;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    privateKey: Hex,
    readonly feeToken: Hex,
    private readonly maxInFlight: number,
  ) {
    this.privateKey = hexToBytes(privateKey);
    this.address = addressOfPrivateKey(this.privateKey);
  }

  /** The broadcastable transaction: the sender's (already verified) transaction with our fee token and signature. */
  coSign(transaction: TempoTransaction, sender: Hex): SponsoredTransaction {
    const feePayerSignature = signDigest(feePayerSignPayload(transaction, { sender, feeToken: this.feeToken }), this.privateKey);
    const serialized = serializeSponsoredTransaction(transaction, { feeToken: this.feeToken, feePayerSignature });
    return { serialized: bytesToHex(serialized), hash: bytesToHex(keccak256(serialized)) };
  }

  /** Runs `broadcast` once fewer than `maxInFlight` sponsored broadcasts are running (FIFO). */
  async withBroadcastSlot<T>(broadcast: () => Promise<T>): Promise<T> {
    if (this.inFlight < this.maxInFlight) this.inFlight++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await broadcast();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.inFlight--;
    }
  }
}
