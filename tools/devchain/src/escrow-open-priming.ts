import {
  createTestClient,
  decodeFunctionData,
  encodeAbiParameters,
  getAbiItem,
  getAddress,
  http,
  isAddressEqual,
  keccak256,
  toFunctionSelector,
  type Address,
  type EIP1193RequestFn,
  type Hex,
  type PublicRpcSchema,
  type TestRpcSchema,
  type Transport,
} from "viem";
import { Session } from "mppx/tempo";
import { Transaction, type z_TransactionSerializableTempo } from "viem/tempo";
import { CHANNEL_ESCROW_ADDRESS, channelEscrowAbi } from "@worldrouter/chain";

/**
 * DEV ONLY — the bridge that lets our Solidity escrow stand-in open channels like the TIP-1034 precompile.
 *
 * The precompile derives each channel id from the opening transaction's `expiringNonceHash`
 * (keccak256(encodeForSigning(tx) || sender)), which the node hands it; a contract cannot see it. So before a
 * signed open transaction is broadcast, dev tooling computes that hash and writes it into the stand-in's storage
 * with `anvil_setStorageAt`; the contract's `open` reads it from there. Never point this at a real network:
 * `anvil_setStorageAt` exists only on anvil, and the real precompile needs no priming.
 */

/** Storage slot of the stand-in's `mapping(bytes32 openKey => bytes32 expiringNonceHash)` (contracts/ChannelEscrow.sol). */
const PRIMED_NONCE_HASH_MAPPING_SLOT = 1n;

export interface EscrowOpenArguments {
  payer: Address;
  payee: Address;
  operator: Address;
  token: Address;
  salt: Hex;
  authorizedSigner: Address;
}

/** Everything about an open except the nonce hash: the key under which the stand-in looks the hash up. */
export function escrowOpenKey(open: EscrowOpenArguments): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: "address" }, { type: "address" }, { type: "address" }, { type: "address" }, { type: "bytes32" }, { type: "address" }],
      [open.payer, open.payee, open.operator, open.token, open.salt, open.authorizedSigner],
    ),
  );
}

export function primedNonceHashStorageSlot(openKey: Hex): Hex {
  return keccak256(encodeAbiParameters([{ type: "bytes32" }, { type: "uint256" }], [openKey, PRIMED_NONCE_HASH_MAPPING_SLOT]));
}

export interface PrimedChannelOpen {
  channelId: Hex;
  descriptor: Session.Precompile.SessionDescriptor;
  deposit: bigint;
}

export interface PrimeOptions {
  /** Where the stand-in is installed (default: the canonical precompile address). */
  escrow?: Address;
}

/**
 * Primes the escrow stand-in for every `open` call in a signed Tempo transaction, so the channel gets the same
 * id on chain as the client computed from the signed tx. Transactions without an `open` call are left alone
 * (returns []), so it is safe to call on every transaction before broadcasting it.
 */
export async function primeEscrowForOpenTransaction(
  rpcUrl: string,
  serializedTransaction: Hex,
  options: PrimeOptions = {},
): Promise<PrimedChannelOpen[]> {
  const rpc = createTestClient({ mode: "anvil", transport: http(rpcUrl) });
  return primeWithRequest(rpc.request as AnvilRequest, serializedTransaction, options);
}

/**
 * Wraps a viem transport so every `eth_sendRawTransaction(Sync)` that carries an escrow `open` is primed first.
 * Give a client built on it to a server that broadcasts open transactions (ours in dev mode, or mppx's
 * `tempo.session({ getClient })`) and it works against the stand-in unchanged.
 */
export function withEscrowOpenPriming(transport: Transport, options: PrimeOptions = {}): Transport {
  return (config) => {
    const inner = transport(config);
    const primingRequest: EIP1193RequestFn = async (args, requestOptions) => {
      if (args.method === "eth_sendRawTransaction" || args.method === "eth_sendRawTransactionSync") {
        const [serializedTransaction] = args.params as [Hex];
        await primeWithRequest(inner.request as AnvilRequest, serializedTransaction, options);
      }
      return inner.request(args, requestOptions);
    };
    return { ...inner, request: primingRequest };
  };
}

type AnvilRequest = EIP1193RequestFn<[...PublicRpcSchema, ...TestRpcSchema<"anvil">]>;

async function primeWithRequest(request: AnvilRequest, serializedTransaction: Hex, options: PrimeOptions): Promise<PrimedChannelOpen[]> {
  const escrow = options.escrow ?? CHANNEL_ESCROW_ADDRESS;
  const opens = findEscrowOpens(serializedTransaction, escrow);
  if (opens.length === 0) return [];

  const chainId = Number(await request({ method: "eth_chainId" }));
  const primed: PrimedChannelOpen[] = [];
  for (const { descriptor, deposit } of opens) {
    const slot = primedNonceHashStorageSlot(escrowOpenKey(descriptor));
    await request({ method: "anvil_setStorageAt", params: [escrow, slot, descriptor.expiringNonceHash] });
    const channelId = Session.Precompile.Channel.computeId({ ...descriptor, chainId, escrow });
    primed.push({ channelId, descriptor, deposit });
  }
  return primed;
}

export interface EscrowOpen {
  descriptor: Session.Precompile.SessionDescriptor;
  deposit: bigint;
}

const OPEN_SELECTOR = toFunctionSelector(getAbiItem({ abi: channelEscrowAbi, name: "open" }));

/** Decodes the escrow `open` calls of a signed Tempo transaction and the descriptor each will get. */
export function findEscrowOpens(serializedTransaction: Hex, escrow: Address = CHANNEL_ESCROW_ADDRESS): EscrowOpen[] {
  if (!serializedTransaction.startsWith("0x76") && !serializedTransaction.startsWith("0x78")) return [];
  // 0x76/0x78 deserialize to a Tempo transaction; `from` is recovered from the sender signature.
  const transaction = Transaction.deserialize(serializedTransaction) as z_TransactionSerializableTempo & { from?: Address };
  const openCalls = (transaction.calls ?? []).filter(
    (call): call is { to: Address; data: Hex } => !!call.to && !!call.data?.startsWith(OPEN_SELECTOR) && isAddressEqual(call.to, escrow),
  );
  if (openCalls.length === 0) return [];
  if (!transaction.from) throw new Error("cannot prime an unsigned open transaction: the sender is part of the expiringNonceHash");

  const payer = getAddress(transaction.from);
  // Same derivation as mppx's client and server (keccak256(encodeForSigning(tx) || sender), with a fee payer's
  // co-signature left out), so the id on chain is the one the client computed.
  const expiringNonceHash = Session.Precompile.Channel.computeExpiringNonceHash(
    Session.Precompile.Channel.transactionForExpiringNonceHash({
      feePayer: transaction.feePayerSignature !== undefined ? true : undefined,
      transaction,
    }),
    { sender: payer },
  );
  return openCalls.flatMap((call) => {
    const decoded = decodeFunctionData({ abi: channelEscrowAbi, data: call.data });
    if (decoded.functionName !== "open") return [];
    const [payee, operator, token, deposit, salt, authorizedSigner] = decoded.args;
    return [{ descriptor: { payer, payee, operator, token, salt, authorizedSigner, expiringNonceHash }, deposit }];
  });
}
