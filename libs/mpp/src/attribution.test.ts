import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isChallengeBoundMemo } from "./attribution.js";

// mppx does not export its Attribution module; load it by file, next to the package's entry point.
const Attribution = (await import(new URL("./tempo/Attribution.js", import.meta.resolve("mppx")).href)) as {
  encode(p: { challengeId: string; serverId: string; clientId?: string }): string;
  verifyServer(memo: string, serverId: string): boolean;
  verifyChallengeBinding(memo: string, challengeId: string): boolean;
};

describe("isChallengeBoundMemo", () => {
  it("agrees with mppx's verifyServer && verifyChallengeBinding", () => {
    for (let i = 0; i < 50; i++) {
      const [realm, challengeId] = [`host-${i}.example:${8000 + i}`, randomUUID()];
      const memo = Attribution.encode({ challengeId, serverId: realm, ...(i % 2 ? { clientId: `client-${i}` } : {}) });
      for (const [r, c, m] of [
        [realm, challengeId, memo],
        [`x${realm}`, challengeId, memo],
        [realm, `${challengeId}x`, memo],
        [realm, challengeId, memo.toUpperCase().replace("0X", "0x")],
        [realm, challengeId, `0x00${memo.slice(4)}`],
        [realm, challengeId, memo.slice(0, 64)],
      ] as const) {
        expect(isChallengeBoundMemo(m, r, c)).toBe(Attribution.verifyServer(m, r) && Attribution.verifyChallengeBinding(m, c));
      }
      expect(isChallengeBoundMemo(memo, realm, challengeId)).toBe(true);
    }
  });
});
