import { describe, expect, it } from "vitest";
import { fmt, fmtDelta, fmtPct, formatBytes, formatEta, hasBaseline, percent, polyline, tableSections, trend, versusBaseline } from "./runs";

const row = (metric: string, pretrained: number | null, finetuned: number | null, delta: number | null = null, delta_pct: number | null = null) =>
  ({ metric, pretrained, finetuned, delta, delta_pct });

describe("number formatting", () => {
  it("formats values, signed deltas and percentages", () => {
    expect(fmt(0.5)).toBe("0.500");
    expect(fmt(null)).toBe("—");
    expect(fmtDelta(0.125)).toBe("+0.125");
    expect(fmtDelta(-0.05)).toBe("−0.050");
    expect(fmtDelta(-0.0001)).toBe("0.000"); // no "−0.000"
    expect(fmtDelta(null)).toBe("—");
    expect(fmtPct(12.345)).toBe("+12.3 %");
    expect(fmtPct(-3)).toBe("−3.0 %");
    expect(fmtPct(null)).toBe("—");
    expect(fmtPct(Number.NaN)).toBe("—");
  });
  it("tells the direction of a change", () => {
    expect(trend(0.1)).toBe("up");
    expect(trend(-0.1)).toBe("down");
    expect(trend(0)).toBe("");
    expect(trend(null)).toBe("");
  });
  it("formats an ETA, sizes and progress", () => {
    expect(formatEta(42)).toBe("42 s");
    expect(formatEta(185)).toBe("3 min 05 s");
    expect(formatEta(3720)).toBe("1 h 02 min");
    expect(formatEta(null)).toBe("—");
    expect(formatBytes(812)).toBe("812 B");
    expect(formatBytes(3482)).toBe("3.4 KB");
    expect(formatBytes(12 * 1024 * 1024)).toBe("12.0 MB");
    expect(formatBytes(null)).toBe("—");
    expect(percent(0.426)).toBe(43);
    expect(percent(1.2)).toBe(100);
    expect(percent(null)).toBe(0);
  });
});

describe("table sections", () => {
  it("splits the worker's table into overall, per class and per question type", () => {
    const s = tableSections([
      row("mAP", 0.1, 0.3, 0.2, 200), row("VQA accuracy", 0.5, 0.75), row("VQA accuracy: counting", 0, 1),
      row("AP: kart", 0.2, 0.4), row("AP50: kart", 0.3, 0.6), row("mean IoU: kart", 0.4, 0.7), row("AP: red car", 0, 0.1),
    ]);
    expect(s.overall.map((r) => r.metric)).toEqual(["mAP", "VQA accuracy"]);
    expect(s.vqaTypes).toEqual([{ ...row("VQA accuracy: counting", 0, 1), qtype: "counting" }]);
    expect(s.perClass.map((c) => [c.cls, c.ap?.finetuned, c.ap50?.finetuned, c.iou?.finetuned])).toEqual([
      ["kart", 0.4, 0.6, 0.7], ["red car", 0.1, undefined, undefined],
    ]);
    expect(tableSections(undefined)).toEqual({ overall: [], perClass: [], vqaTypes: [] });
  });
});

describe("chart scaling", () => {
  it("scales a series into the chart", () => {
    const p = polyline([0, 5, 10], [2, 1, 0], 100, 50);
    expect(p.points).toBe("0.0,0.0 50.0,25.0 100.0,50.0");
    expect([p.min, p.max]).toEqual([0, 2]);
    expect(polyline([], [], 1, 1).points).toBe("");
  });
  it("a flat series sits in the middle; non-finite points are skipped", () => {
    expect(polyline([1, 2], [3, 3], 10, 10).points).toBe("0.0,5.0 10.0,5.0");
    expect(polyline([1, 2, 3], [1, Number.NaN, 0], 10, 10).points).toBe("0.0,0.0 10.0,10.0");
  });
});

describe("no-model baselines", () => {
  const row = (finetuned: number | null, prior?: number | null) =>
    ({ metric: "AP50", pretrained: 0, finetuned, delta: null, delta_pct: null, prior });
  it("is shown only when some row has it", () => {
    expect(hasBaseline([row(0.5), row(0.5, null)], "prior")).toBe(false);
    expect(hasBaseline([row(0.5), row(0.5, 0.58)], "prior")).toBe(true);
    expect(hasBaseline(undefined, "prior")).toBe(false);
  });
  it("says where the fine-tuned value stands", () => {
    expect(versusBaseline(row(0.55, 0.58))).toBe("below");
    expect(versusBaseline(row(0.61, 0.58))).toBe("above");
    expect(versusBaseline(row(null, 0.58))).toBe("");
    expect(versusBaseline(row(0.5))).toBe("");
  });
  it("reads the majority answer of VQA rows the same way", () => {
    const vqa = { metric: "VQA accuracy: counting", pretrained: 0, finetuned: 0.6, delta: null, delta_pct: null, majority: 0.675 };
    expect(hasBaseline([vqa], "majority")).toBe(true);
    expect(hasBaseline([vqa], "prior")).toBe(false);
    expect(versusBaseline(vqa, "majority")).toBe("below");
  });
});
