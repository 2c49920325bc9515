import { describe, expect, it } from "vitest";
import { alignSeries, hasPoints, hoverValue, SMOOTH_FROM, smooth } from "./chart";

describe("alignSeries", () => {
  it("puts every run's steps on one axis with gaps where a run has no point", () => {
    const { steps, series } = alignSeries([
      { name: "run 1", history: [{ step: 1, loss: 2 }, { step: 2, loss: 1.5 }, { step: 4, loss: 1 }], val: [[4, 1.8]] },
      { name: "run 2", history: [{ step: 1, loss: 3 }, { step: 3, loss: Number.NaN }] },
    ]);
    expect(steps).toEqual([1, 2, 3, 4]);
    expect(series.map((s) => s.label)).toEqual(["run 1 loss", "run 1 validation loss", "run 2 loss"]);
    expect(series[0].values).toEqual([2, 1.5, null, 1]);
    expect(series[1].values).toEqual([null, null, null, 1.8]);
    expect(series[2].values).toEqual([3, null, null, null]); // NaN is a gap, not a point
    expect(series[1].kind).toBe("val");
  });
  it("reads validation loss from the history when no pairs are given", () => {
    const { series } = alignSeries([{ name: "r", history: [{ step: 5, loss: 1, val_loss: 2 }, { step: 6, loss: 0.9 }] }]);
    expect(series[1].values).toEqual([2, null]);
  });
});

describe("smoothing", () => {
  it("is TensorBoard's debiased moving average: a constant stays constant, gaps stay gaps", () => {
    expect(smooth([2, 2, null, 2])).toEqual([2, 2, null, 2].map((v) => (v == null ? null : expect.closeTo(v, 12))));
    const s = smooth([0, 10], 0.5); // (0.5*0 + 0.5*0 = 0) / 0.5 = 0; (0.5*0 + 0.5*10) / 0.75 = 6.67
    expect(s[0]).toBeCloseTo(0);
    expect(s[1]).toBeCloseTo(20 / 3);
  });
  it("adds a smoothed line for a run with enough points, not for a short one", () => {
    const long = Array.from({ length: SMOOTH_FROM }, (_, i) => ({ step: i + 1, loss: i % 2 ? 3 : 0.1 }));
    const { series } = alignSeries([{ name: "r", history: long }, { name: "q", history: long.slice(0, 5) }]);
    expect(series.map((s) => s.label)).toEqual(["r loss", "r loss (smoothed)", "q loss"]);
    const sm = series[1].values.filter((v): v is number => v != null);
    // the line swings far less than the raw loss (0.1 <-> 3)
    expect(Math.max(...sm.slice(5)) - Math.min(...sm.slice(5))).toBeLessThan(1);
    expect(series[1].kind).toBe("smooth");
  });
});

describe("chart helpers", () => {
  it("draws nothing for a run that has not started", () => {
    expect(hasPoints([{ name: "r", history: [] }])).toBe(false);
    expect(hasPoints([{ name: "r", history: [{ step: 1, loss: Number.NaN }] }])).toBe(false);
    expect(hasPoints([{ name: "r", history: [{ step: 1, loss: 0.5 }] }])).toBe(true);
  });
  it("formats hover values", () => {
    expect(hoverValue(1.23456)).toBe("1.235");
    expect(hoverValue(null)).toBe("—");
    expect(hoverValue(123.456)).toBe("123.5");
  });
});
