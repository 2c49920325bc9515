import { describe, expect, it } from "vitest";
import { alignSeries, hasPoints, hoverValue } from "./chart";

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
