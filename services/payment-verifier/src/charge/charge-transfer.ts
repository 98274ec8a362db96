/**
 * The rules a charge's transfer must meet, as pure functions: the client's fee-sponsored transaction before we
 * co-sign it (mppx's `assertTransferCalls`, `FeePayer.validateCalls` and `assertTransactionPolicy` for one
 * transferWithMemo), and the Transfer logs of a receipt afterwards (mppx's `assertTransferLogs`).
 */
import type { ChainReceipt, TempoTransaction, Tip20TransferCall } from "@worldrouter/chain";
import { decodeTip20TransferCall, decodeTip20TransferLog } from "@worldrouter/chain";
import { isChallengeBoundMemo, PaymentErrors } from "@worldrouter/mpp";

type Hex = `0x${string}`;

/** What the challenge asks for. Addresses lowercase. */
export interface ChargeExpectation {
  token: Hex;
  payee: Hex;
  amount: bigint;
  chainId: number;
  realm: string;
  challengeId: string;
  /** Epoch ms. */
  challengeExpiresAt: number;
}

/** What the fee payer agrees to co-sign for one transaction. */
export interface SponsorPolicy {
  /** The token the sponsor pays gas in; a client may name it or leave `feeToken` empty, nothing else. */
  feeToken: Hex;
  maxGas: bigint;
  maxFeePerGas: bigint;
  maxTotalFee: bigint;
}

/** mppx's defaults for what config does not set (mppx `fee-payer.js` `defaultPolicy`). */
const MAX_PRIORITY_FEE_PER_GAS = 10_000_000_000n;
const MAX_VALIDITY_WINDOW_SECONDS = 15 * 60;
/** A transaction may stay valid this long after its challenge expires (mppx: 60 s). */
const VALIDITY_AFTER_CHALLENGE_SECONDS = 60;
/** A transaction's validAfter may be this far ahead of our clock (clock differences), no more. */
const VALID_AFTER_CLOCK_SKEW_SECONDS = 5;
/** TIP-1009 expiring nonces: nonce key 2^256 − 1, replay-protected by the node until `validBefore`. */
const EXPIRING_NONCE_KEY = 2n ** 256n - 1n;

const mismatch = (reason: string) => new PaymentErrors.VerificationFailedError({ reason });

/**
 * Checks the client's transaction (sender signature not yet verified) against the charge and the sponsor's
 * policy; returns the transfer it makes. Throws VerificationFailedError naming the first rule it breaks.
 */
export function checkSponsoredTransfer(
  transaction: TempoTransaction,
  expected: ChargeExpectation,
  policy: SponsorPolicy,
  now: number,
): Tip20TransferCall {
  const { feePayer } = transaction;
  if (feePayer.kind === "none")
    throw mismatch("the transaction is not fee-sponsored (expected a 0x78 fee-payer envelope, as the challenge sets feePayer)");
  if (feePayer.kind === "signed") throw mismatch("the transaction already carries a fee payer signature");
  if (!transaction.signature) throw mismatch("the transaction is not signed by its sender");
  if (transaction.chainId !== expected.chainId)
    throw mismatch(`the transaction is for chain ${transaction.chainId}, not ${expected.chainId}`);
  if (transaction.hasKeyAuthorization) throw mismatch("key authorizations are not accepted in a sponsored transaction");
  if (transaction.hasAuthorizationList) throw mismatch("authorization lists are not accepted in a sponsored transaction");
  if (transaction.accessList.length > 0) throw mismatch("an access list is not accepted in a sponsored transaction");

  if (transaction.calls.length !== 1)
    throw mismatch(`expected exactly one call (the transferWithMemo paying this charge), got ${transaction.calls.length}`);
  const call = transaction.calls[0]!;
  if (call.to !== expected.token)
    throw mismatch(`the call goes to ${call.to ?? "a contract creation"}, not the payment token ${expected.token}`);
  if (call.value !== 0n) throw mismatch("the call carries a native value");
  const transfer = decodeTip20TransferCall(call.data);
  if (!transfer?.memo) throw mismatch("the call is not a canonically encoded transferWithMemo(to, amount, memo)");
  if (transfer.to !== expected.payee) throw mismatch(`the transfer pays ${transfer.to}, not the payee ${expected.payee}`);
  if (transfer.amount !== expected.amount)
    throw mismatch(`the transfer is for ${transfer.amount} base units, the challenge asks for ${expected.amount}`);
  if (!isChallengeBoundMemo(transfer.memo, expected.realm, expected.challengeId))
    throw mismatch("the transfer memo is not bound to this challenge and realm");

  if (transaction.feeToken !== undefined && transaction.feeToken !== policy.feeToken)
    throw mismatch(`fee token ${transaction.feeToken} is not accepted; the sponsor pays gas in ${policy.feeToken}`);
  const { gas, maxFeePerGas, maxPriorityFeePerGas } = transaction;
  if (gas === 0n) throw mismatch("the transaction must declare gas");
  if (gas > policy.maxGas) throw mismatch(`gas ${gas} exceeds the sponsor's limit of ${policy.maxGas}`);
  if (maxFeePerGas === 0n) throw mismatch("the transaction must declare maxFeePerGas");
  if (maxFeePerGas > policy.maxFeePerGas)
    throw mismatch(`maxFeePerGas ${maxFeePerGas} exceeds the sponsor's limit of ${policy.maxFeePerGas}`);
  if (gas * maxFeePerGas > policy.maxTotalFee)
    throw mismatch(`gas × maxFeePerGas = ${gas * maxFeePerGas} exceeds the sponsor's limit of ${policy.maxTotalFee}`);
  if (maxPriorityFeePerGas > maxFeePerGas) throw mismatch("maxPriorityFeePerGas exceeds maxFeePerGas");
  if (maxPriorityFeePerGas > MAX_PRIORITY_FEE_PER_GAS)
    throw mismatch(`maxPriorityFeePerGas ${maxPriorityFeePerGas} exceeds the sponsor's limit of ${MAX_PRIORITY_FEE_PER_GAS}`);

  if (transaction.nonceKey !== EXPIRING_NONCE_KEY)
    throw mismatch("a sponsored transaction must use an expiring nonce (nonceKey 2^256 − 1)");
  const { validBefore } = transaction;
  if (validBefore === undefined) throw mismatch("a sponsored transaction must declare validBefore");
  const nowSeconds = Math.floor(now / 1000);
  if (validBefore <= nowSeconds) throw mismatch(`the transaction expired at ${validBefore}`);
  // A transaction not valid yet could be held back and mined at a time of the sender's choosing, long after this
  // verification (and the sponsor's budget window) ended.
  if (transaction.validAfter !== undefined && transaction.validAfter > nowSeconds + VALID_AFTER_CLOCK_SKEW_SECONDS)
    throw mismatch(`the transaction is not valid before ${transaction.validAfter}; a charge must be payable now`);
  const latest = Math.min(
    nowSeconds + MAX_VALIDITY_WINDOW_SECONDS,
    Math.floor(expected.challengeExpiresAt / 1000) + VALIDITY_AFTER_CHALLENGE_SECONDS,
  );
  if (validBefore > latest) throw mismatch(`validBefore ${validBefore} is later than the sponsor allows (${latest})`);
  return transfer;
}

/**
 * Whether a receipt shows the charge paid: a TransferWithMemo log of the token from `sender` to the payee for the
 * amount, with a memo bound to the challenge. Throws VerificationFailedError otherwise.
 */
export function assertChargeTransferLogged(receipt: ChainReceipt, expected: ChargeExpectation, sender: Hex): void {
  if (receipt.status !== "success") throw mismatch(`transaction ${receipt.transactionHash} reverted`);
  for (const log of receipt.logs) {
    const transfer = decodeTip20TransferLog(log);
    if (
      transfer?.memo !== undefined &&
      transfer.token === expected.token &&
      transfer.from === sender &&
      transfer.to === expected.payee &&
      transfer.amount === expected.amount &&
      isChallengeBoundMemo(transfer.memo, expected.realm, expected.challengeId)
    ) {
      return;
    }
  }
  throw mismatch(
    `transaction ${receipt.transactionHash} has no TransferWithMemo of ${expected.amount} base units of ${expected.token} from ${sender} to ${expected.payee} bound to this challenge`,
  );
}

const PKH_SOURCE = /^did:pkh:eip155:(0|[1-9]\d*):(0x[0-9a-fA-F]{40})$/;

/** The payer a push credential names in `source` (`did:pkh:eip155:<chainId>:<address>`), checked like mppx. */
export function parseCredentialSource(source: string | undefined, chainId: number): Hex | undefined {
  if (source === undefined) return undefined;
  const match = PKH_SOURCE.exec(source);
  if (!match || Number(match[1]) !== chainId) throw mismatch("the credential source is not a did:pkh:eip155 address on this chain");
  return match[2]!.toLowerCase() as Hex;
}
