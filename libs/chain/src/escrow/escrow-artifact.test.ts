import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { AbiEvent, AbiFunction } from "viem";
import { formatAbiItem } from "viem/utils";
import { Session } from "mppx/tempo";
import { compileEscrow, escrowArtifactPath, renderEscrowArtifactModule } from "../../scripts/compile-escrow.mjs";
import { channelEscrowArtifact } from "./escrow-artifact.js";

describe("escrow stand-in artifact", () => {
  it("is exactly what contracts/ChannelEscrow.sol compiles to (run `npm run compile:escrow` after editing it)", () => {
    expect(readFileSync(escrowArtifactPath, "utf8")).toBe(renderEscrowArtifactModule(compileEscrow()));
  });

  it("exposes every function and event of the TIP-1034 precompile ABI mppx speaks, with the same shape", () => {
    const artifactItems = channelEscrowArtifact.abi.filter((item) => item.type === "function" || item.type === "event") as (
      | AbiFunction
      | AbiEvent
    )[];
    const shape = (item: AbiFunction | AbiEvent) =>
      item.type === "function"
        ? { signature: formatAbiItem(item), outputs: item.outputs.map((o) => o.type), stateMutability: item.stateMutability }
        : { signature: formatAbiItem(item), indexed: item.inputs.map((i) => i.indexed ?? false) };
    const precompile = Session.Precompile.escrowAbi.map((item) => shape(item as AbiFunction | AbiEvent));
    expect(artifactItems.map(shape).sort(bySignature)).toEqual(precompile.sort(bySignature));
  });
});

function bySignature(a: { signature: string }, b: { signature: string }) {
  return a.signature.localeCompare(b.signature);
}
