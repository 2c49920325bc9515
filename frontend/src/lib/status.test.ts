import { describe, expect, it } from "vitest";
import { imagesUsed, passes, runUseText, type StatusCount } from "./status";

const counts: StatusCount[] = [
  { split: "train", status: "accepted", n: 3 }, { split: "train", status: "rejected", n: 2 },
  { split: "train", status: "unlabeled", n: 5 }, { split: "test", status: "accepted", n: 1 },
  { split: null, status: "in_review", n: 7 },
];

describe("status filters", () => {
  it("not_rejected keeps everything but rejected; accepted only reviewed work", () => {
    expect(passes("not_rejected", "in_review")).toBe(true);
    expect(passes("not_rejected", "rejected")).toBe(false);
    expect(passes("accepted", "unlabeled")).toBe(false);
    expect(passes("all", "rejected")).toBe(true);
    expect(passes("rejected", "rejected")).toBe(true);
  });
  it("counts the images of the chosen splits", () => {
    expect(imagesUsed(counts, "not_rejected", ["train", "test"])).toBe(9);
    expect(imagesUsed(counts, "accepted", ["train", "test"])).toBe(4);
    expect(imagesUsed(counts, "all")).toBe(18);
    expect(imagesUsed(counts, "not_rejected")).toBe(16);
    expect(runUseText(counts, "accepted", ["train", "test"])).toBe("a run would use 4 of 11 train+test images (accepted)");
  });
});
