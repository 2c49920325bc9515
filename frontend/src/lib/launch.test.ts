import { describe, expect, it } from "vitest";
import type { CatalogModel } from "../api/client";
import { buildRequest, DEFAULT_FORM, errorField, estimateText, familyWeights, pickedForm, suggestedText, targetModules } from "./launch";

describe("launch form -> run config", () => {
  it("a LoRA train run sends the knobs, no quantisation keys, max_steps null when empty", () => {
    const r = buildRequest({ ...DEFAULT_FORM, base_model: " /models/tiny ", max_steps: "" });
    expect(r.kind).toBe("train");
    expect(r.config).toMatchObject({ family: "paligemma", base_model: "/models/tiny", method: "lora", rank: 8, alpha: 16,
      target_modules: "all-linear", max_steps: null, tasks: { detect: 1, vqa: 1 }, train_split: "train", eval_split: "test",
      image_status: "not_rejected" });
    expect(buildRequest({ ...DEFAULT_FORM, train_status: "accepted" }).config).toMatchObject({ image_status: "accepted" });
    expect(r.config).not.toHaveProperty("bits");
    expect(r.config).not.toHaveProperty("qa_families"); // null = every family the project has
  });
  it("QLoRA adds bits, quant type and compute dtype; families and steps pass through", () => {
    const r = buildRequest({ ...DEFAULT_FORM, method: "qlora", bits: 8, compute_dtype: "bfloat16", max_steps: "4",
      qa_families: ["counting"], target_modules: "q_proj, v_proj" });
    expect(r.config).toMatchObject({ method: "qlora", bits: 8, quant_type: "nf4", compute_dtype: "bfloat16", max_steps: 4,
      qa_families: ["counting"], target_modules: ["q_proj", "v_proj"] });
  });
  it("evaluate with an adapter leaves family and base to the adapter's run; predict sends the status", () => {
    const e = buildRequest({ ...DEFAULT_FORM, kind: "evaluate", adapter_run_id: "7" });
    expect(e.config).toEqual({ adapter_run_id: 7, eval_split: "test", leak_key: "race_id", max_eval_images: null, max_new_tokens: "auto",
      image_status: "not_rejected" });
    const p = buildRequest({ ...DEFAULT_FORM, kind: "predict", base_model: "org/model", adapter_run_id: "7" });
    expect(p.config).toEqual({ family: "paligemma", base_model: "org/model", adapter_run_id: 7, image_status: "unlabeled" });
  });
  it("pooling the base's boxes is sent only when on, and only where an adapter is evaluated or predicts", () => {
    expect(buildRequest(DEFAULT_FORM).config).not.toHaveProperty("pool_base_boxes");
    const on = { ...DEFAULT_FORM, pool_base_boxes: true };
    expect(buildRequest(on).config).toMatchObject({ pool_base_boxes: true });
    expect(buildRequest({ ...on, kind: "predict", adapter_run_id: "7" }).config).toMatchObject({ pool_base_boxes: true });
    expect(buildRequest({ ...on, kind: "evaluate", base_model: "org/m" }).config).not.toHaveProperty("pool_base_boxes");
  });
  it("question family weights join the task mix as vqa:<family>; a word without a number is sent as null", () => {
    expect(familyWeights("")).toEqual({});
    expect(familyWeights("spatial 4, counting: 0.5 ,region=2")).toEqual({ "vqa:spatial": 4, "vqa:counting": 0.5, "vqa:region": 2 });
    expect(familyWeights("spatial, two words 3")).toEqual({ "vqa:spatial": null, "vqa:two words 3": null });
    expect(buildRequest({ ...DEFAULT_FORM, detect_weight: 3, family_weights: "spatial 4" }).config)
      .toMatchObject({ tasks: { detect: 3, vqa: 1, "vqa:spatial": 4 } });
    expect(errorField("config.tasks: unknown task(s) ['vqa:spatail']; use detect, vqa and/or vqa:<question family>")).toBe("tasks");
  });
  it("target modules", () => {
    expect(targetModules("all-linear")).toBe("all-linear");
    expect(targetModules("q_proj,,k_proj ")).toEqual(["q_proj", "k_proj"]);
  });
});

describe("GPU knobs", () => {
  it("compute dtype auto, gradient checkpointing and max_pixels are sent for every train run", () => {
    const r = buildRequest({ ...DEFAULT_FORM });
    expect(r.config).toMatchObject({ compute_dtype: "auto", gradient_checkpointing: "auto", max_pixels: 1003520 });
    const off = buildRequest({ ...DEFAULT_FORM, gradient_checkpointing: "off", max_pixels: "", max_new_tokens: "300" });
    expect(off.config).toMatchObject({ gradient_checkpointing: false, max_pixels: null, max_new_tokens: 300 });
  });
  it("picking a catalogue model sets its id, family and the run settings it was pre-trained with", () => {
    const demo = { id: "/m/demo", name: "demo", source: "demo", family: "paligemma", model_type: "paligemma", status: "ready",
      size_bytes: 1, parameters: 1, pretrained: null, note: null,
      suggested: { object_order: "largest_first", loc_sigma: 6, not_a_form_key: 1, batch_size: "8" } } as CatalogModel;
    const f = pickedForm({ ...DEFAULT_FORM, family: "qwen2_vl" }, demo);
    expect(f).toMatchObject({ base_model: "/m/demo", family: "paligemma", object_order: "largest_first", loc_sigma: 6 });
    expect(f).not.toHaveProperty("not_a_form_key");
    expect(f.batch_size).toBe(DEFAULT_FORM.batch_size); // a value of the wrong type is not taken
    expect(buildRequest(f).config).toMatchObject({ object_order: "largest_first", loc_sigma: 6 });
    expect(suggestedText(demo)).toBe("object_order largest_first, loc_sigma 6");
    const plain = { ...demo, suggested: null, family: null };
    expect(pickedForm(DEFAULT_FORM, plain)).toMatchObject({ base_model: "/m/demo", family: "paligemma", object_order: "shuffle", loc_sigma: 0 });
    expect(suggestedText(plain)).toBe("");
  });
  it("loc_sigma is a train knob: 0 by default (the API's, plain cross-entropy), sent as a number", () => {
    expect(buildRequest({ ...DEFAULT_FORM }).config).toMatchObject({ loc_sigma: 0 });
    expect(buildRequest({ ...DEFAULT_FORM, loc_sigma: 6 }).config).toMatchObject({ loc_sigma: 6 });
    expect(buildRequest({ ...DEFAULT_FORM, kind: "evaluate", loc_sigma: 6 }).config).not.toHaveProperty("loc_sigma");
  });
  it("augment is a train knob: none by default (the API's), crop + mirror when picked", () => {
    expect(buildRequest({ ...DEFAULT_FORM }).config).toMatchObject({ augment: "none" });
    expect(buildRequest({ ...DEFAULT_FORM, augment: "crop_flip" }).config).toMatchObject({ augment: "crop_flip" });
    expect(buildRequest({ ...DEFAULT_FORM, kind: "evaluate", augment: "crop_flip" }).config).not.toHaveProperty("augment");
  });
  it("the estimate reads as a sentence that says whether it fits", () => {
    const e = { estimate_gb: 18.49, parts: { weights: 9.94, lora: 0.3, activations: 4.5, logits: 1.52, eval: 11 },
      device_gb: 24, fits: true };
    expect(estimateText(e)).toContain("~18.5 GB");
    expect(estimateText(e)).toContain("fits this GPU (24 GB)");
    expect(estimateText({ ...e, fits: false })).toContain("does NOT fit");
    expect(estimateText({ ...e, fits: null, device_gb: null })).not.toContain("fit");
  });
});

describe("422 -> field", () => {
  it("finds the field a message names", () => {
    expect(errorField("config.rank=0: must be an integer >= 1")).toBe("rank");
    expect(errorField("config.rank: Input should be a valid integer")).toBe("rank");
    expect(errorField("config.tasks.detect: Input should be a valid number")).toBe("tasks");
    expect(errorField("config.task_weights: at least one task needs a weight > 0")).toBe("tasks");
    expect(errorField("config.freeze_vision, freeze_projector and freeze_language are all true: nothing to train")).toBe("freeze");
    expect(errorField("config.base_model: model folder /x does not exist")).toBe("base_model");
    expect(errorField("kind: 'x' is not one of train, evaluate, predict")).toBe("kind");
  });
  it("a message naming no field stays with the form", () => {
    expect(errorField("the split leaks: 2 race_id group(s) have images in more than one split")).toBeNull();
    expect(errorField("network error: Failed to fetch")).toBeNull();
  });
});
