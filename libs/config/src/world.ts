import { readFileSync } from "node:fs";
import { z } from "zod";

/**
 * `.local/world.json`: the local world written by tools/devchain (chain, token, escrow, funded accounts)
 * and tools/fake-upstream. Services read it for chain/upstream defaults; users and external clients use it
 * to pay. Dev-only: production config comes from env vars.
 */
const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, "expected a 0x-prefixed 20-byte address")
  .transform((a) => a.toLowerCase() as `0x${string}`);
const privateKey = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, "expected a 0x-prefixed 32-byte private key")
  .transform((k) => k as `0x${string}`);

export const WorldAccount = z.object({ address, privateKey });
export const WorldWallet = WorldAccount.extend({ balance: z.string().regex(/^\d+$/, "base units as a decimal string") });

export const World = z.object({
  rpcUrl: z.url(),
  chainId: z.number().int().positive(),
  token: z.object({ address, decimals: z.number().int().min(0).max(36), symbol: z.string(), name: z.string() }),
  escrow: address,
  feePayer: WorldAccount,
  payee: WorldAccount,
  wallets: z.array(WorldWallet).min(1),
  upstreamUrl: z.url().optional(),
});
export type World = z.infer<typeof World>;

export function readWorldFile(path: string): World {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`cannot read world file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = World.safeParse(raw);
  if (!parsed.success) throw new Error(`invalid world file ${path}: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
