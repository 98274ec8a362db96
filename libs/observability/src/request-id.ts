import { randomBytes } from "node:crypto";

/** Request ids: `wr_` + 24 url-safe random chars. Also the OpenAI completion id suffix (`chatcmpl-wr_…`). */
export function newRequestId(): string {
  return `wr_${randomBytes(18).toString("base64url")}`;
}
