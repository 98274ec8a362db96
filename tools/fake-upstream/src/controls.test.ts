import { describe, expect, it } from "vitest";
import { ControlError, DEFAULT_CONTROLS, readControls, splitModel } from "./controls.js";

describe("splitModel", () => {
  it("takes controls off the model name and keeps other colon segments", () => {
    expect(splitModel("gpt-4o-mini")).toEqual({ model: "gpt-4o-mini", suffix: new Map() });
    expect(splitModel("gpt-4o-mini:fault=429:ttft-ms=5")).toEqual({
      model: "gpt-4o-mini",
      suffix: new Map([
        ["fault", "429"],
        ["ttft-ms", "5"],
      ]),
    });
    expect(splitModel("ft:gpt-4o-mini:org::abc123:tokens=3").model).toBe("ft:gpt-4o-mini:org::abc123");
  });
});

describe("readControls", () => {
  it("returns the defaults object itself when nothing is set (no allocation on the hot path)", () => {
    expect(readControls({}, new Map(), DEFAULT_CONTROLS)).toBe(DEFAULT_CONTROLS);
  });

  it("reads headers over model suffix over defaults", () => {
    const defaults = { ...DEFAULT_CONTROLS, latencyMs: 5, completionTokens: 10 };
    const controls = readControls(
      { "x-fake-tokens": "7", "x-fake-fault": "overloaded", "x-fake-request-key": "abc" },
      new Map([
        ["tokens", "3"],
        ["ttft-ms", "20"],
      ]),
      defaults,
    );
    expect(controls).toMatchObject({ completionTokens: 7, ttftMs: 20, latencyMs: 5, fault: "overloaded", requestKey: "abc" });
  });

  it.each([
    [{ "x-fake-tokens": "-1" }, new Map<string, string>()],
    [{ "x-fake-chunk-tokens": "0" }, new Map<string, string>()],
    [{ "x-fake-fault": "404" }, new Map<string, string>()],
    [{ "x-fake-tool-call": "maybe" }, new Map<string, string>()],
    [{}, new Map([["latency", "5"]])],
  ])("rejects %j %j", (headers, suffix) => {
    expect(() => readControls(headers, suffix, DEFAULT_CONTROLS)).toThrow(ControlError);
  });
});
