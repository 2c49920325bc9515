import { describe, expect, it } from "vitest";
import { compareMetrics, configDiff, configLine, headline, parseIds, shortModel } from "./compare";

const t = (metric: string, pretrained: number | null, finetuned: number | null) =>
  ({ metric, pretrained, finetuned, delta: null, delta_pct: null });

describe("compareMetrics", () => {
  it("lines up every metric of every run with the change against the first run", () => {
    const rows = compareMetrics([
      { metrics: { table: [t("mAP", 0.1, 0.3), t("AP50", 0.2, 0.5)] } },
      { metrics: { table: [t("mAP", 0.1, 0.4), t("VQA accuracy", 0.2, 0.6)] } },
      { metrics: {} },
    ]);
    expect(rows.map((r) => r.metric)).toEqual(["mAP", "AP50", "VQA accuracy"]);
    expect(rows[0].values).toEqual([0.3, 0.4, null]);
    expect(rows[0].deltas[0]).toBeNull();
    expect(rows[0].deltas[1]).toBeCloseTo(0.1);
    expect(rows[0].deltas[2]).toBeNull(); // the third run has no value
    expect(rows[2].deltas).toEqual([null, null, null]); // the first run has no value to compare with
  });
  it("uses the pretrained value of an evaluate run", () => {
    expect(compareMetrics([{ metrics: { table: [t("mAP", 0.2, null)] } }])[0].values).toEqual([0.2]);
  });
});

describe("configDiff", () => {
  it("lists the reader's keys first and marks the ones that differ", () => {
    const d = configDiff([
      { learning_rate: 0.0002, rank: 8, seed: 0, base_model: "/d/models/m" },
      { learning_rate: 0.0005, rank: 8, seed: 0, base_model: "/d/models/m", dropout: 0.1 },
    ]);
    expect(d.map((x) => x.key)).toEqual(["base_model", "rank", "learning_rate", "dropout", "seed"]);
    expect(d.filter((x) => x.differs).map((x) => x.key)).toEqual(["learning_rate", "dropout"]);
    expect(d.find((x) => x.key === "dropout")!.values).toEqual(["—", "0.1"]);
    expect(d.find((x) => x.key === "learning_rate")!.values).toEqual(["2.0e-4", "5.0e-4"]);
  });
});

describe("run summaries", () => {
  it("says a configuration in one line", () => {
    expect(configLine({ method: "lora", rank: 16, learning_rate: 5e-4, max_steps: 600, train_split: "train",
      eval_split: "test", base_model: "/data/models/tiny-paligemma-synth-abc/" }))
      .toBe("LoRA r16 · lr 5.0e-4 · 600 steps · train → test · tiny-paligemma-synth-abc");
    expect(configLine({ method: "qlora", rank: 8, epochs: 1, eval_split: "test", base_model: "google/paligemma2-3b-pt-224" }))
      .toBe("QLoRA r8 · 1 epoch(s) · on test · google/paligemma2-3b-pt-224");
  });
  it("shortens local paths only", () => {
    expect(shortModel("org/name")).toBe("org/name");
    expect(shortModel("./models/x")).toBe("x");
    expect(shortModel(null)).toBe("—");
  });
  it("picks the headline metric", () => {
    expect(headline([t("AP50", 0, 1), t("mAP", 0, 0.5)])!.metric).toBe("mAP");
    expect(headline([t("VQA accuracy", 0, 1), t("F1@50", 0, 0.5)])!.metric).toBe("F1@50");
    expect(headline([])).toBeNull();
  });
  it("parses run ids from the URL", () => {
    expect(parseIds("3, 1,x,3,-2,0")).toEqual([3, 1]);
    expect(parseIds(null)).toEqual([]);
  });
});
