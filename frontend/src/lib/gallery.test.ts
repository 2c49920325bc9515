import { describe, expect, it } from "vitest";
import { apiQuery, changeText, parseState, shapes, stateToSearch, statsText } from "./gallery";

describe("gallery filters", () => {
  it("round-trips through the URL and keeps the URL short", () => {
    const s = parseState("?sort=most_regressed&label=kart&error=missed&offset=12");
    expect(s).toEqual({ sort: "most_regressed", label: "kart", error: "missed", offset: 12 });
    expect(parseState(stateToSearch(s))).toEqual(s);
    expect(stateToSearch(parseState(""))).toBe("");
  });
  it("bad values fall back to the defaults", () => {
    expect(parseState("sort=best&error=all&offset=-3")).toEqual({ sort: "most_improved", label: "", error: "", offset: 0 });
    expect(parseState("offset=1.5").offset).toBe(0);
  });
  it("maps to the API query", () => {
    expect(apiQuery({ sort: "image", label: "", error: "false_box", offset: 24 }, 6))
      .toEqual({ sort: "image", label: "", error: "false_box", offset: 24, limit: 6 });
  });
});

describe("gallery panels", () => {
  it("turns boxes into overlay shapes with scores", () => {
    const got = shapes([{ label: "kart", box: [1, 2, 3, 4], score: 0.876 }, { label: "ball", box: [5, 6, 7, 8] }], (l) => (l === "kart" ? "#f00" : "#0f0"));
    expect(got).toEqual([
      { x1: 1, y1: 2, x2: 3, y2: 4, color: "#f00", text: "kart 0.88" },
      { x1: 5, y1: 6, x2: 7, y2: 8, color: "#0f0", text: "ball" },
    ]);
    expect(shapes(null, () => "")).toEqual([]);
  });
  it("describes stats and the change", () => {
    expect(statsText({ image_id: 1, tp: 1, fp: 0, fn: 2, wrong_label: 1, f1: 0.5 })).toBe("F1 0.50 · 1 TP · 2 missed · 0 false · 1 wrong label");
    expect(statsText(null)).toBe("not evaluated");
    expect(changeText(0.333)).toBe("improved by 0.33 F1");
    expect(changeText(-0.2)).toBe("regressed by 0.20 F1");
    expect(changeText(0)).toBe("unchanged");
    expect(changeText(null)).toBe("");
  });
});
