// The split tool's form -> POST /splits body (backend/splits.py), pure: ratios and held-out groups
// typed as text ("train=0.8, val=0.1, test=0.1"; "test=lighthouse, zengarden") with clear errors.

export type SplitMode = "image" | "group" | "track";
export interface SplitForm { mode: SplitMode; key: string; ratios: string; heldOut: string; seed: number; checkKey: string }
export interface SplitBody {
  mode: SplitMode; key?: string; ratios?: Record<string, number>; held_out?: Record<string, string[]>; seed: number;
  check_key?: string; dry_run?: boolean;
}

export const DEFAULT_SPLIT_FORM: SplitForm = {
  mode: "group", key: "race_id", ratios: "train=0.8, val=0.1, test=0.1", heldOut: "", seed: 0, checkKey: "race_id",
};

/** "train=0.8, val=0.2" -> {train: 0.8, val: 0.2}; throws naming the bad part. */
export function parseRatios(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Za-z0-9_-]+)\s*[=:]\s*([0-9]*\.?[0-9]+)$/.exec(part);
    if (!m) throw new Error(`ratios: "${part}" is not split=share (e.g. train=0.8)`);
    out[m[1]] = Number(m[2]);
  }
  if (!Object.keys(out).length) throw new Error("ratios: give at least one split=share");
  if (Object.values(out).every((v) => v === 0)) throw new Error("ratios: at least one share must be above 0");
  return out;
}

/** "test=lighthouse, zengarden; val=hacienda" -> {test: ["lighthouse", "zengarden"], val: ["hacienda"]}. */
export function parseHeldOut(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const part of text.split(";").map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(part);
    if (!m) throw new Error(`held out: "${part}" is not split=group, group (e.g. test=lighthouse)`);
    out[m[1]] = m[2].split(",").map((g) => g.trim()).filter(Boolean);
  }
  return out;
}

export function splitBody(f: SplitForm, dryRun: boolean): SplitBody {
  const body: SplitBody = { mode: f.mode, seed: f.seed, dry_run: dryRun };
  if (f.mode !== "image") body.key = f.key.trim() || (f.mode === "track" ? "track" : "race_id");
  if (f.mode === "track" && f.heldOut.trim()) body.held_out = parseHeldOut(f.heldOut);
  else body.ratios = parseRatios(f.ratios);
  if (f.checkKey.trim()) body.check_key = f.checkKey.trim();
  return body;
}
