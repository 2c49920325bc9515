// Pure helpers of the run pages: the before / after table (from the run's metrics.table), number
// formatting, ETA and sizes, the loss / learning-rate chart scaling.
import type { TableRow } from "../api/client";

/** "0.532"; "—" for a missing value. */
export function fmt(v: number | null | undefined, digits = 3): string {
  return v == null || !Number.isFinite(v) ? "—" : v.toFixed(digits);
}

/** A signed change: "+0.125", "−0.050" (a real minus sign), "0.000"; "—" when undefined. */
export function fmtDelta(v: number | null | undefined, digits = 3): string {
  if (v == null || !Number.isFinite(v)) return "—";
  const s = Math.abs(v).toFixed(digits);
  if (Number(s) === 0) return (0).toFixed(digits);
  return (v > 0 ? "+" : "−") + s;
}

/** "+12.5 %", "−3.0 %"; "—" when undefined (the pretrained value was 0 or missing). */
export function fmtPct(v: number | null | undefined): string {
  const d = fmtDelta(v, 1);
  return d === "—" ? d : `${d} %`;
}

/** "up" / "down" / "" for colouring a change (every metric in the table is higher-is-better). */
export function trend(delta: number | null | undefined, eps = 1e-9): "up" | "down" | "" {
  if (delta == null || !Number.isFinite(delta) || Math.abs(delta) <= eps) return "";
  return delta > 0 ? "up" : "down";
}

/** The columns beside a table row's fine-tuned value: the no-model baselines, the location prior
 *  (detection metrics) and the majority answer (VQA accuracy), and the adapter's own detection
 *  metrics when the run pools the base's boxes (pool_base_boxes). */
export type Baseline = "prior" | "majority" | "adapter_alone";
/** Whether some row of a table has a value in column `key`. */
export function hasBaseline(rows: TableRow[] = [], key: Baseline = "prior"): boolean {
  return rows.some((r) => r[key] != null);
}
/** How a row's fine-tuned value stands against column `key`: "above" / "below" / "" (no value). */
export function versusBaseline(r: TableRow, key: Baseline = "prior"): "above" | "below" | "" {
  const v = r[key];
  if (v == null || r.finetuned == null) return "";
  return r.finetuned > v ? "above" : "below";
}

export interface ClassRow { cls: string; ap: TableRow | null; ap50: TableRow | null; iou: TableRow | null }
export interface Sections { overall: TableRow[]; perClass: ClassRow[]; vqaTypes: (TableRow & { qtype: string })[] }

/** Split the worker's flat table (worker/runner.py `table`) into the overall metrics, the per-class
 *  AP / AP50 / IoU (rows "AP: kart", "AP50: kart", "mean IoU: kart") and VQA accuracy per question
 *  type (rows "VQA accuracy: counting"). */
export function tableSections(rows: TableRow[] = []): Sections {
  const overall: TableRow[] = [], vqaTypes: Sections["vqaTypes"] = [];
  const classes = new Map<string, ClassRow>();
  for (const r of rows) {
    const i = r.metric.indexOf(": ");
    if (i < 0) { overall.push(r); continue; }
    const head = r.metric.slice(0, i), rest = r.metric.slice(i + 2);
    if (head === "VQA accuracy") { vqaTypes.push({ ...r, qtype: rest }); continue; }
    const key = head === "AP" ? "ap" : head === "AP50" ? "ap50" : head === "mean IoU" ? "iou" : null;
    if (!key) { overall.push(r); continue; }
    const c = classes.get(rest) ?? { cls: rest, ap: null, ap50: null, iou: null };
    c[key] = r;
    classes.set(rest, c);
  }
  return { overall, perClass: [...classes.values()], vqaTypes };
}

/** "1 h 02 min", "3 min 05 s", "42 s"; "—" when unknown. */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${s} s`;
}

/** "812 B", "3.4 KB", "12.0 MB" (powers of 1024). */
export function formatBytes(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n) || n < 0) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** SVG polyline points of a series scaled into w × h (y grows downward), with its range. Points
 *  that are not finite numbers (a NaN loss) are skipped rather than breaking the whole line. */
export function polyline(xs: number[], ys: number[], w: number, h: number): { points: string; min: number; max: number } {
  const pts = xs.map((x, i) => [x, ys[i]] as const).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (!pts.length) return { points: "", min: 0, max: 0 };
  const px = pts.map((p) => p[0]), py = pts.map((p) => p[1]);
  const x0 = Math.min(...px), x1 = Math.max(...px), min = Math.min(...py), max = Math.max(...py);
  const sx = (x: number) => (x1 === x0 ? w / 2 : ((x - x0) / (x1 - x0)) * w);
  const sy = (y: number) => (max === min ? h / 2 : h - ((y - min) / (max - min)) * h);
  return { points: pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" "), min, max };
}

/** Progress as a whole percentage clamped to 0..100. */
export function percent(p: number | null | undefined): number {
  return p == null || !Number.isFinite(p) ? 0 : Math.round(Math.min(1, Math.max(0, p)) * 100);
}
