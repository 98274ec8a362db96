import { z } from "zod";

/** Token base units (6 decimals for USDC.e) as a decimal string: JSON has no bigint. */
export const BaseUnits = z.string().regex(/^\d+$/, "expected an integer amount in base units");
export const Address = z.string().regex(/^0x[0-9a-f]{40}$/, "expected a lowercase 0x-prefixed 20-byte address");
export const Hash32 = z.string().regex(/^0x[0-9a-f]{64}$/, "expected a lowercase 0x-prefixed 32-byte hash");
export const RequestId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, "expected a request id");
export const Intent = z.enum(["charge", "session"]);
export type Intent = z.infer<typeof Intent>;
