export * from "./abis.js";
export * from "./clients.js";
export * from "./constants.js";
export { channelEscrowArtifact } from "./escrow/escrow-artifact.js";
export {
  addressOfPrivateKey,
  keccak256,
  recoverAddress,
  SECP256K1_BACKEND,
  signDigest,
  SignatureError,
  type Secp256k1Signature,
} from "./codec/secp256k1.js";
export {
  bytesToHex,
  decodeTempoTransaction,
  feePayerSignPayload,
  hexToBytes,
  recoverSender,
  senderSignPayload,
  serializeSponsoredTransaction,
  serializeTempoTransaction,
  TempoTransactionError,
  type TempoAccessListEntry,
  type TempoCall,
  type TempoFeePayerField,
  type TempoTransaction,
} from "./codec/tempo-transaction.js";
export * from "./codec/tip20.js";
export * from "./rpc/chain-rpc-client.js";
