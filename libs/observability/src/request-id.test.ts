import { describe, expect, it } from "vitest";
import { newRequestId } from "./index.js";

describe("newRequestId", () => {
  it("is wr_ + 24 url-safe chars, unique across pool refills", () => {
    const ids = Array.from({ length: 5000 }, () => newRequestId());
    for (const id of ids) expect(id).toMatch(/^wr_[A-Za-z0-9_-]{24}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
