import { randomBytes } from "node:crypto";

const ID_BYTES = 18;
let pool = Buffer.alloc(0);
let offset = 0;

/**
 * Request ids: `wr_` + 24 url-safe random chars (144 bits). Random bytes are drawn 512 ids at a time: one
 * `randomBytes` call per request was a measurable share of a 402's CPU.
 */
export function newRequestId(): string {
  if (offset + ID_BYTES > pool.length) {
    pool = randomBytes(ID_BYTES * 512);
    offset = 0;
  }
  return `wr_${pool.toString("base64url", offset, (offset += ID_BYTES))}`;
}
