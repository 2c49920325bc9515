// Pure helpers of the run pages (written against the runs API contract of issue #5; the pages
// that use them wait for that API).

export interface MetricRow { metric: string; before: number | null; after: number | null; delta: number | null; deltaPct: number | null }

/** The before / after table: every metric either side has, Δ and Δ % (null where undefined). */
export function metricRows(before: Record<string, number> = {}, after: Record<string, number> = {}): MetricRow[] {
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return names.map((metric) => {
    const b = typeof before[metric] === "number" ? before[metric] : null;
    const a = typeof after[metric] === "number" ? after[metric] : null;
    const delta = a !== null && b !== null ? a - b : null;
    const deltaPct = delta !== null && b !== null && b !== 0 ? (delta / Math.abs(b)) * 100 : null;
    return { metric, before: b, after: a, delta, deltaPct };
  });
}

/** "1 h 02 min", "3 min 05 s", "42 s"; "—" when unknown. */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${s} s`;
}

/** SVG polyline points of a series scaled into w × h (y grows downward), with its range. */
export function polyline(xs: number[], ys: number[], w: number, h: number): { points: string; min: number; max: number } {
  if (!xs.length) return { points: "", min: 0, max: 0 };
  const x0 = Math.min(...xs), x1 = Math.max(...xs), min = Math.min(...ys), max = Math.max(...ys);
  const sx = (x: number) => (x1 === x0 ? w / 2 : ((x - x0) / (x1 - x0)) * w);
  const sy = (y: number) => (max === min ? h / 2 : h - ((y - min) / (max - min)) * h);
  return { points: xs.map((x, i) => `${sx(x).toFixed(1)},${sy(ys[i]).toFixed(1)}`).join(" "), min, max };
}
