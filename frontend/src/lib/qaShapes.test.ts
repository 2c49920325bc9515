import { describe, expect, it } from "vitest";
import { boxRefs, paramShapes, unionBoxes } from "./qaShapes";

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

describe("unionBoxes / boxRefs", () => {
  const a = { label: "kart", x1: 1, y1: 2, x2: 30, y2: 40 }, b = { label: "ball", x1: 50, y1: 5, x2: 60, y2: 15 };
  it("numbers each distinct box once, in order of first use", () => {
    const u = unionBoxes([{ params: { boxes: [a] } }, { params: { boxes: [b, { ...a, x1: 1.2 }] } }, { params: {} }]);
    expect(u.map((x) => [x.label, x.n])).toEqual([["kart", 1], ["ball", 2]]);
    expect(boxRefs({ boxes: [b, a] }, u)).toEqual(["{box0} = #2 ball", "{box1} = #1 kart"]);
  });
});
