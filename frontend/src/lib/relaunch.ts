// "Launch again with changes": a run's stored config back into the launch form, and the form kept
// per project across launches (sessionStorage), so a second run starts from the first one's values.
import type { RunKind } from "../api/client";
import { DEFAULT_FORM, familyWeightsText, type LaunchForm } from "./launch";

const str = (v: unknown) => (v == null ? "" : String(v));

/** The launch form of a run's config (backend.runs.RunConfig keys); unknown keys are ignored,
 *  missing ones keep the form's defaults. */
export function configToForm(kind: RunKind, c: Record<string, unknown>, base: LaunchForm = DEFAULT_FORM): LaunchForm {
  const f: LaunchForm = { ...base, kind };
  const own = Object.keys(base) as (keyof LaunchForm)[];
  for (const k of own) {
    if (!(k in c) || c[k] === undefined) continue;
    const v = c[k], d = base[k];
    if (typeof d === "number") (f as unknown as Record<string, unknown>)[k] = Number(v);
    else if (typeof d === "boolean") (f as unknown as Record<string, unknown>)[k] = Boolean(v);
    else if (k === "qa_families") f.qa_families = Array.isArray(v) ? (v as string[]) : null;
    else (f as unknown as Record<string, unknown>)[k] = str(v);
  }
  if (Array.isArray(c.target_modules)) f.target_modules = (c.target_modules as string[]).join(", ");
  const tasks = c.tasks as Record<string, number> | undefined;
  if (tasks) {
    f.detect_weight = Number(tasks.detect ?? 0); f.vqa_weight = Number(tasks.vqa ?? 0);
    f.family_weights = familyWeightsText(tasks);
  }
  return f;
}

const key = (pid: number) => `vlm-studio-launch-form-${pid}`;

export function savedForm(pid: number, storage: Pick<Storage, "getItem"> = sessionStorage): LaunchForm | null {
  try {
    const raw = storage.getItem(key(pid));
    return raw ? { ...DEFAULT_FORM, ...(JSON.parse(raw) as Partial<LaunchForm>) } : null;
  } catch {
    return null;
  }
}

export function saveForm(pid: number, f: LaunchForm, storage: Pick<Storage, "setItem"> = sessionStorage): void {
  try { storage.setItem(key(pid), JSON.stringify(f)); } catch { /* private mode: the form just resets */ }
}

/** A message cut at a word boundary (never mid-word), with "…" when cut. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max + 1);
  const i = cut.search(/\s\S*$/);
  return (i > max / 2 ? cut.slice(0, i) : text.slice(0, max)).replace(/[\s,;:]+$/, "") + " …";
}
