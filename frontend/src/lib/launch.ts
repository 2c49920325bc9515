// The run launcher's form state -> the API's run config (backend.runs.RunConfig keys), and a
// server error -> the form field it names, so a 422 shows next to that field.
import type { CatalogModel, RunCreate, RunKind } from "../api/client";

export const FAMILIES: [string, string][] = [
  ["paligemma", "PaliGemma / PaliGemma 2"], ["qwen2_vl", "Qwen2-VL"], ["qwen2_5_vl", "Qwen2.5-VL"], ["smolvlm", "SmolVLM"],
];

export interface LaunchForm {
  kind: RunKind; family: string; base_model: string; method: "lora" | "qlora";
  bits: number; quant_type: string; compute_dtype: string;
  rank: number; alpha: number; dropout: number; target_modules: string;
  learning_rate: number; epochs: number; max_steps: string; batch_size: number; grad_accum: number;
  scheduler: string; warmup_ratio: number; freeze_vision: boolean; freeze_projector: boolean; freeze_language: boolean;
  detect_weight: number; vqa_weight: number; family_weights: string; qa_families: string[] | null;
  train_split: string; eval_split: string; leak_key: string; max_eval_images: string; max_new_tokens: string;
  adapter_run_id: string; image_status: string; train_status: string;
  gradient_checkpointing: "auto" | "on" | "off"; max_pixels: string; augment: "none" | "flip" | "crop_flip";
  loc_sigma: number; object_order: "shuffle" | "largest_first" | "as_given"; pool_base_boxes: boolean;
}

/** The defaults are RunConfig's (backend/runs.py), so an untouched form trains like the API would. */
export const DEFAULT_FORM: LaunchForm = {
  kind: "train", family: "paligemma", base_model: "", method: "lora", bits: 4, quant_type: "nf4", compute_dtype: "auto",
  rank: 8, alpha: 16, dropout: 0.05, target_modules: "all-linear", learning_rate: 2e-4, epochs: 1, max_steps: "",
  batch_size: 4, grad_accum: 1, scheduler: "cosine", warmup_ratio: 0, freeze_vision: true, freeze_projector: false,
  freeze_language: false, detect_weight: 1, vqa_weight: 1, family_weights: "", qa_families: null, train_split: "train", eval_split: "test",
  leak_key: "race_id", max_eval_images: "", max_new_tokens: "auto", adapter_run_id: "", image_status: "unlabeled",
  train_status: "not_rejected", gradient_checkpointing: "auto", max_pixels: String(1280 * 28 * 28), augment: "none",
  loc_sigma: 0, object_order: "shuffle", pool_base_boxes: false,
};

/** The form after picking catalogue model `m`: its id and family, and the run settings it was
 *  pre-trained with (`suggested`: the demo model's object order and soft box targets), so a
 *  fine-tune keeps the loss and order the base knows. Keys the form does not have are ignored. */
export function pickedForm(f: LaunchForm, m: CatalogModel): LaunchForm {
  return { ...f, base_model: m.id, family: m.family ?? f.family, ...Object.fromEntries(suggested(m)) };
}

/** The model's suggested settings that are launch-form fields with a value of the field's type. */
const suggested = (m: CatalogModel): [string, unknown][] => Object.entries(m.suggested ?? {})
  .filter(([k, v]) => k in DEFAULT_FORM && typeof v === typeof DEFAULT_FORM[k as keyof LaunchForm]);

/** "object_order largest_first, loc_sigma 6": what picking `m` set in the form ("" when nothing). */
export function suggestedText(m: CatalogModel): string {
  return suggested(m).map(([k, v]) => `${k} ${String(v)}`).join(", ");
}

/** "auto" (or empty) stays "auto"; a number is sent as a number. */
export const autoOrInt = (s: string): number | "auto" => (s.trim() === "" || s.trim() === "auto" ? "auto" : Number(s));

export interface Estimate {
  estimate_gb: number; parts: Record<string, number>; device_gb: number | null; fits: boolean | null;
}

/** "~18.5 GB (weights 9.9, LoRA 0.3, activations 4.5, logits 1.5, eval 11.0)" and whether it fits. */
export function estimateText(e: Estimate): string {
  const p = e.parts;
  const parts = `weights ${p.weights?.toFixed(1)}, LoRA + optimizer ${p.lora?.toFixed(1)}, activations ${p.activations?.toFixed(1)}, logits ${p.logits?.toFixed(1)}, evaluation ${p.eval?.toFixed(1)} GB`;
  const fit = e.fits === null || e.device_gb === null ? "" : e.fits ? ` — fits this GPU (${e.device_gb.toFixed(0)} GB)` : ` — does NOT fit this GPU (${e.device_gb.toFixed(0)} GB)`;
  return `estimated peak GPU memory ~${e.estimate_gb.toFixed(1)} GB (${parts})${fit}`;
}

const intOrNull = (s: string): number | null => (s.trim() === "" ? null : Number(s));

/** "all-linear" stays a string; "q_proj, v_proj" becomes a list. */
export function targetModules(s: string): string | string[] {
  const parts = s.split(",").map((p) => p.trim()).filter(Boolean);
  return parts.length === 1 && parts[0] === "all-linear" ? "all-linear" : parts;
}

/** "spatial 4, counting 0.5" (or "spatial: 4", "spatial=4") -> {"vqa:spatial": 4, "vqa:counting": 0.5}:
 *  a question family's own sampling weight (RunConfig.tasks). A word without a number is sent as
 *  null, so the API's 422 names it under the task mix. */
export function familyWeights(s: string): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const part of s.split(",").map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Za-z_]\w*)\s*[:=]?\s*(\S*)$/.exec(part);
    const name = m ? m[1] : part, w = m && m[2] !== "" ? Number(m[2]) : NaN;
    out[`vqa:${name}`] = Number.isFinite(w) ? w : null;
  }
  return out;
}

/** {"vqa:spatial": 4} -> "spatial 4": the form's text of a config's family weights. */
export const familyWeightsText = (tasks: Record<string, number>): string => Object.entries(tasks)
  .filter(([k]) => k.startsWith("vqa:")).map(([k, w]) => `${k.slice(4)} ${w}`).join(", ");

export function buildRequest(f: LaunchForm): RunCreate {
  const c: Record<string, unknown> = { family: f.family, base_model: f.base_model.trim() };
  if (f.kind === "train") {
    Object.assign(c, {
      method: f.method, rank: f.rank, alpha: f.alpha, dropout: f.dropout, target_modules: targetModules(f.target_modules),
      learning_rate: f.learning_rate, epochs: f.epochs, max_steps: intOrNull(f.max_steps), batch_size: f.batch_size,
      grad_accum: f.grad_accum, scheduler: f.scheduler, warmup_ratio: f.warmup_ratio, freeze_vision: f.freeze_vision,
      freeze_projector: f.freeze_projector, freeze_language: f.freeze_language,
      tasks: { detect: f.detect_weight, vqa: f.vqa_weight, ...familyWeights(f.family_weights) }, train_split: f.train_split,
      compute_dtype: f.compute_dtype,
      gradient_checkpointing: f.gradient_checkpointing === "auto" ? "auto" : f.gradient_checkpointing === "on",
      max_pixels: intOrNull(f.max_pixels), augment: f.augment, loc_sigma: f.loc_sigma,
      object_order: f.object_order,
    });
    if (f.method === "qlora") Object.assign(c, { bits: f.bits, quant_type: f.quant_type });
  }
  if (f.kind !== "predict") {
    Object.assign(c, { eval_split: f.eval_split, leak_key: f.leak_key, max_eval_images: intOrNull(f.max_eval_images),
      max_new_tokens: autoOrInt(f.max_new_tokens), image_status: f.train_status });
    if (f.qa_families !== null) c.qa_families = f.qa_families;
  }
  if (f.kind !== "train" && f.adapter_run_id !== "") {
    c.adapter_run_id = Number(f.adapter_run_id);
    // an adapter's run already names its family and base model: send them only when typed in
    if (!c.base_model) { delete c.base_model; delete c.family; }
  }
  if (f.kind === "predict") c.image_status = f.image_status;
  // an adapter's boxes pooled with its base's: sent only when on (the API's default is off)
  if (f.pool_base_boxes && (f.kind === "train" || c.adapter_run_id !== undefined)) c.pool_base_boxes = true;
  return { kind: f.kind, config: c, dry_run: false };
}

// Server names -> the form field that shows the message.
const ALIASES: Record<string, string> = {
  task_weights: "tasks", freeze_projector: "freeze", freeze_language: "freeze", freeze_vision: "freeze",
  bits: "bits", image_ids: "image_status",
};

/** "config.rank=0: must be …", "config.tasks: …", "kind: …" -> "rank", "tasks", "kind"; null when the
 *  message names no field (a leaking split, a 500): it is shown under the form instead. */
export function errorField(detail: string): string | null {
  const m = /^(?:config\.)?([a-z_0-9]+)(?=[.:=[,\s])/.exec(detail);
  if (!m || !detail.startsWith("config.") && m[1] !== "kind") return null;
  return ALIASES[m[1]] ?? m[1];
}
