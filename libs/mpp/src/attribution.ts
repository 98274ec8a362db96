import { keccak256, stringToBytes } from "viem";

/**
 * mppx's charge memo check (`Attribution.verifyServer` + `verifyChallengeBinding` in mppx/tempo/Attribution.js,
 * which mppx does not export): is this 32-byte memo an MPP attribution memo for our realm, bound to this
 * challenge? Layout: tag `ef1ed712` (keccak("mpp")[0..3]), version 0x01, keccak(realm)[0..9], client
 * fingerprint (not checked), keccak(challengeId)[0..6].
 */
export function isChallengeBoundMemo(memo: string, realm: string, challengeId: string): boolean {
  if (memo.length !== 66) return false;
  const hex = memo.toLowerCase();
  return hex.startsWith("0xef1ed71201") && hex.slice(12, 32) === realmFingerprint(realm) && hex.slice(52) === fingerprint(challengeId, 7);
}

/** A server has one realm (or a few): its fingerprint is hashed once, not on every check of every charge. */
const realmFingerprints = new Map<string, string>();
function realmFingerprint(realm: string): string {
  let cached = realmFingerprints.get(realm);
  if (cached === undefined) realmFingerprints.set(realm, (cached = fingerprint(realm, 10)));
  return cached;
}

function fingerprint(value: string, bytes: number): string {
  return keccak256(stringToBytes(value)).slice(2, 2 + bytes * 2);
}
