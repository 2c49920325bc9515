import { describe, expect, it } from "vitest";
import { DEFAULT_SPLIT_FORM, parseHeldOut, parseRatios, splitBody } from "./splits";

describe("split form", () => {
  it("parses ratios and names a bad part", () => {
    expect(parseRatios("train=0.8, val=0.1,test:0.1")).toEqual({ train: 0.8, val: 0.1, test: 0.1 });
    expect(() => parseRatios("train=0.8, val")).toThrow('"val" is not split=share');
    expect(() => parseRatios("train=0")).toThrow("above 0");
    expect(() => parseRatios(" ")).toThrow("at least one");
  });
  it("parses held-out groups", () => {
    expect(parseHeldOut("test=lighthouse, zengarden; val=hacienda")).toEqual({ test: ["lighthouse", "zengarden"], val: ["hacienda"] });
    expect(() => parseHeldOut("lighthouse")).toThrow("split=group");
  });
  it("builds the body per mode", () => {
    expect(splitBody(DEFAULT_SPLIT_FORM, true)).toEqual({ mode: "group", key: "race_id", seed: 0, dry_run: true,
      ratios: { train: 0.8, val: 0.1, test: 0.1 }, check_key: "race_id" });
    expect(splitBody({ ...DEFAULT_SPLIT_FORM, mode: "image", key: "x" }, false)).not.toHaveProperty("key");
    expect(splitBody({ ...DEFAULT_SPLIT_FORM, mode: "track", key: "", heldOut: "test=lighthouse" }, false))
      .toMatchObject({ key: "track", held_out: { test: ["lighthouse"] } });
  });
});
