import { Challenge } from "mppx";

type Hex = `0x${string}`;

/** What a session challenge asks for (tempo `session`, TIP-1034 "v2"): a price per unit and the channel terms. */
export interface SessionTerms {
  currency: Hex;
  recipient: Hex;
  chainId: number;
  escrowContract: Hex;
  /** Smallest increase of a voucher's cumulative amount the server accepts (base units). */
  minVoucherDelta: bigint;
  /** Deposit the client should open with (base units). */
  suggestedDeposit: bigint;
}

/** The session `request` object as it goes on the wire (amounts are base-unit decimal strings). */
export function sessionRequest(terms: SessionTerms, amountPerUnit: bigint) {
  return {
    amount: amountPerUnit.toString(),
    currency: terms.currency,
    methodDetails: {
      chainId: terms.chainId,
      escrowContract: terms.escrowContract,
      // We sponsor gas of the open and top-up transactions as we do for charges.
      feePayer: true,
      minVoucherDelta: terms.minVoucherDelta.toString(),
      sessionProtocol: "v2",
    },
    recipient: terms.recipient,
    suggestedDeposit: terms.suggestedDeposit.toString(),
    unitType: "llm_token",
  };
}

export interface IssuedSessionChallenge {
  challenge: Challenge.Challenge;
  /** Its `WWW-Authenticate` value. */
  header: string;
}

/**
 * Issues session challenges: stateless (mppx's HMAC id over every field), with no body digest, because the same
 * challenge answers the management calls (vouchers, top-ups, a close) that the client sends without a body while a
 * stream runs. A voucher only authorises spending; what a request costs is metered from its usage.
 */
export class SessionChallenger {
  constructor(private readonly options: { secretKey: string; realm: string; terms: SessionTerms }) {}

  challenge(input: { amountPerUnit: bigint; expiresAt: Date; description?: string }): IssuedSessionChallenge {
    const challenge = Challenge.from({
      secretKey: this.options.secretKey,
      realm: this.options.realm,
      method: "tempo",
      intent: "session",
      request: sessionRequest(this.options.terms, input.amountPerUnit),
      expires: input.expiresAt.toISOString(),
      ...(input.description ? { description: input.description } : {}),
    });
    return { challenge, header: Challenge.serialize(challenge) };
  }
}

/** mppx's session receipt (`Payment-Receipt` header and the final `payment-receipt` SSE event). */
export interface SessionReceipt {
  method: "tempo";
  intent: "session";
  status: "success";
  timestamp: string;
  reference: string;
  challengeId: string;
  channelId: string;
  acceptedCumulative: string;
  spent: string;
  units?: number;
  txHash?: string;
}

export function sessionReceipt(input: {
  challengeId: string;
  channelId: string;
  acceptedCumulative: bigint;
  spent: bigint;
  units?: number;
  txHash?: string;
}): SessionReceipt {
  return {
    method: "tempo",
    intent: "session",
    status: "success",
    timestamp: new Date().toISOString(),
    reference: input.channelId,
    challengeId: input.challengeId,
    channelId: input.channelId,
    acceptedCumulative: input.acceptedCumulative.toString(),
    spent: input.spent.toString(),
    ...(input.units !== undefined ? { units: input.units } : {}),
    ...(input.txHash !== undefined ? { txHash: input.txHash } : {}),
  };
}

/** mppx `serializeSessionReceipt`: unpadded base64url of the receipt's JSON. */
export function serializeSessionReceipt(receipt: SessionReceipt): string {
  return Buffer.from(JSON.stringify(receipt), "utf8").toString("base64url");
}
