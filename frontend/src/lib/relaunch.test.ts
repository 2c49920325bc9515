import { describe, expect, it } from "vitest";
import { DEFAULT_FORM, buildRequest } from "./launch";
import { clip, configToForm, saveForm, savedForm } from "./relaunch";

describe("configToForm", () => {
  it("round-trips a run's config through the launch form", () => {
    const config = { family: "paligemma", base_model: "/data/models/m", method: "lora", rank: 16, alpha: 32, dropout: 0,
      target_modules: ["q_proj", "v_proj"], learning_rate: 5e-4, epochs: 1, max_steps: 40, batch_size: 8, grad_accum: 1,
      scheduler: "cosine", warmup_ratio: 0.05, freeze_vision: false, freeze_projector: false, freeze_language: false,
      tasks: { detect: 3, vqa: 1, "vqa:spatial": 4 }, qa_families: ["detection"], train_split: "train", eval_split: "test",
      leak_key: "track", max_eval_images: null, max_new_tokens: 40, seed: 0 };
    const f = configToForm("train", config);
    expect(f.rank).toBe(16);
    expect(f.max_steps).toBe("40");
    expect(f.max_eval_images).toBe("");
    expect(f.target_modules).toBe("q_proj, v_proj");
    expect([f.detect_weight, f.vqa_weight, f.family_weights]).toEqual([3, 1, "spatial 4"]);
    const back = buildRequest(f).config as Record<string, unknown>;
    for (const k of ["base_model", "rank", "learning_rate", "max_steps", "leak_key", "qa_families", "target_modules", "tasks"])
      expect(back[k]).toEqual(config[k as keyof typeof config]);
  });
  it("keeps the defaults for keys the config lacks", () => {
    expect(configToForm("evaluate", { base_model: "x" })).toEqual({ ...DEFAULT_FORM, kind: "evaluate", base_model: "x" });
  });
});

describe("saved form", () => {
  it("is kept per project", () => {
    const m = new Map<string, string>();
    const st = { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v) };
    saveForm(3, { ...DEFAULT_FORM, rank: 4 }, st);
    expect(savedForm(3, st)!.rank).toBe(4);
    expect(savedForm(4, st)).toBeNull();
    m.set("vlm-studio-launch-form-5", "{not json");
    expect(savedForm(5, st)).toBeNull();
  });
});

describe("clip", () => {
  it("never cuts mid-word", () => {
    expect(clip("short", 10)).toBe("short");
    expect(clip("ModelNotFound: model google/paligemma could not be loaded", 30)).toBe("ModelNotFound: model …");
    expect(clip("averyveryverylongwordwithoutspaces", 10)).toBe("averyveryv …");
  });
});
