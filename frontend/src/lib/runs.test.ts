import { describe, expect, it } from "vitest";
import { formatEta, metricRows, polyline } from "./runs";

describe("run helpers", () => {
  it("metric table with deltas", () => {
    expect(metricRows({ ap50: 0.5, f1: 0 }, { ap50: 0.75, f1: 0.2, vqa: 0.9 })).toEqual([
      { metric: "ap50", before: 0.5, after: 0.75, delta: 0.25, deltaPct: 50 },
      { metric: "f1", before: 0, after: 0.2, delta: 0.2, deltaPct: null },
      { metric: "vqa", before: null, after: 0.9, delta: null, deltaPct: null },
    ]);
  });
  it("formats an ETA", () => {
    expect(formatEta(42)).toBe("42 s");
    expect(formatEta(185)).toBe("3 min 05 s");
    expect(formatEta(3720)).toBe("1 h 02 min");
    expect(formatEta(null)).toBe("—");
  });
  it("scales a series into the chart", () => {
    const p = polyline([0, 5, 10], [2, 1, 0], 100, 50);
    expect(p.points).toBe("0.0,0.0 50.0,25.0 100.0,50.0");
    expect([p.min, p.max]).toEqual([0, 2]);
    expect(polyline([], [], 1, 1).points).toBe("");
  });
});
