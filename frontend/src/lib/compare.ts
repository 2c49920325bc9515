// The compare page and the run summaries: a run's configuration in a few words, metrics side by
// side with the change against the first run, and the configuration keys that differ.
import type { RunSummary, TableRow } from "../api/client";

/** The keys a reader wants first, in this order (then every other key, alphabetically). */
export const CONFIG_KEYS = ["base_model", "family", "method", "rank", "alpha", "learning_rate", "max_steps", "epochs",
  "batch_size", "train_split", "eval_split"] as const;

/** "tiny-paligemma-synth-1a2b" for a local folder, the hub id as it is. */
export function shortModel(path: unknown): string {
  const s = String(path ?? "");
  if (!s) return "—";
  return s.startsWith("/") || s.startsWith(".") ? s.replace(/\/+$/, "").split("/").pop()! : s;
}

export function formatValue(v: unknown): string {
  if (v === null || v === undefined || v === "") return "—";
  if (typeof v === "number") return Math.abs(v) > 0 && Math.abs(v) < 1e-2 ? v.toExponential(1) : String(v);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** One line: "LoRA r8 · lr 2.0e-4 · 600 steps · train → test · tiny-paligemma-synth-…". */
export function configLine(c: Record<string, unknown> | undefined | null): string {
  if (!c) return "";
  const parts = [
    c.method ? `${String(c.method).toUpperCase().replace("QLORA", "QLoRA").replace("LORA", "LoRA")} r${c.rank ?? "?"}` : null,
    c.learning_rate != null ? `lr ${formatValue(c.learning_rate)}` : null,
    c.max_steps != null ? `${c.max_steps} steps` : c.epochs != null ? `${c.epochs} epoch(s)` : null,
    c.train_split ? `${c.train_split} → ${c.eval_split}` : c.eval_split ? `on ${c.eval_split}` : null,
    shortModel(c.base_model),
  ];
  return parts.filter(Boolean).join(" · ");
}

/** The headline row of a run's table: mAP, else F1@50, else the first. */
export function headline(table: TableRow[] | undefined): TableRow | null {
  if (!table?.length) return null;
  return table.find((r) => r.metric === "mAP") ?? table.find((r) => r.metric === "F1@50") ?? table[0];
}

export interface CompareRow { metric: string; values: (number | null)[]; deltas: (number | null)[] }

/** Every metric any run has (in first-seen order), each run's fine-tuned value (the pretrained one
 *  for an evaluate run), and each run's change against the first run. */
export function compareMetrics(runs: Pick<RunSummary, "metrics">[]): CompareRow[] {
  const order: string[] = [];
  const maps = runs.map((r) => {
    const m = new Map<string, number | null>();
    for (const row of r.metrics?.table ?? []) {
      if (!order.includes(row.metric)) order.push(row.metric);
      m.set(row.metric, row.finetuned ?? row.pretrained ?? null);
    }
    return m;
  });
  return order.map((metric) => {
    const values = maps.map((m) => m.get(metric) ?? null);
    const base = values[0];
    return { metric, values, deltas: values.map((v, i) => (i === 0 || v == null || base == null ? null : v - base)) };
  });
}

export interface ConfigDiff { key: string; values: string[]; differs: boolean }

/** The configurations key by key (CONFIG_KEYS first); `differs` where not every run has the same value. */
export function configDiff(configs: Record<string, unknown>[]): ConfigDiff[] {
  const keys = new Set<string>();
  configs.forEach((c) => Object.keys(c ?? {}).forEach((k) => keys.add(k)));
  const first = CONFIG_KEYS.filter((k) => keys.has(k)) as string[];
  const rest = [...keys].filter((k) => !first.includes(k)).sort();
  return [...first, ...rest].map((key) => {
    const values = configs.map((c) => formatValue(c?.[key]));
    return { key, values, differs: values.some((v) => v !== values[0]) };
  });
}

/** "1,3,4" from the URL -> [1, 3, 4] (unique, positive ids only). */
export function parseIds(s: string | null): number[] {
  const out: number[] = [];
  for (const p of (s ?? "").split(",")) {
    const n = Number(p.trim());
    if (Number.isInteger(n) && n > 0 && !out.includes(n)) out.push(n);
  }
  return out;
}
