export * from "./abis.js";
export * from "./clients.js";
export * from "./constants.js";
export { channelEscrowArtifact } from "./escrow/escrow-artifact.js";
