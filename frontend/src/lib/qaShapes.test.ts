import { describe, expect, it } from "vitest";
import { paramShapes } from "./qaShapes";

describe("paramShapes", () => {
  it("draws params.boxes in order, regions dashed", () => {
    const s = paramShapes({ boxes: [{ label: "kart", x1: 1, y1: 2, x2: 3, y2: 4 }, { label: "region", x1: 0, y1: 0, x2: 9, y2: 9 }], n: 2 });
    expect(s).toEqual([
      { x1: 1, y1: 2, x2: 3, y2: 4, text: "0: kart", color: "#ffcc00", dashed: false },
      { x1: 0, y1: 0, x2: 9, y2: 9, text: "1: region", color: "#00e5ff", dashed: true },
    ]);
  });
  it("ignores malformed entries and missing boxes", () => {
    expect(paramShapes({ boxes: [{ label: "x", x1: 1 }, null, "a"] })).toEqual([]);
    expect(paramShapes({})).toEqual([]);
  });
});
