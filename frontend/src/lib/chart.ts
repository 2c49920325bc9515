// The data of the loss charts (components/LossChart.tsx, uPlot): one x axis of optimiser steps shared
// by every series, null where a series has no point at that step (uPlot's aligned-data format).
export interface LossPoint { step: number; loss: number; lr?: number; val_loss?: number }
export interface SeriesSource { name: string; history: LossPoint[]; val?: [number, number][] }
export interface ChartSeries { label: string; kind: "loss" | "smooth" | "val"; run: number; values: (number | null)[] }

// A run's per-step loss swings with each batch's mix (detection and questions): from this many
// points on, a smoothed line is drawn over it, as TensorBoard's smoothing slider does.
export const SMOOTH_FROM = 20;
const SMOOTH_WEIGHT = 0.9;

/** Exponential moving average with TensorBoard's debiasing (the first points are not pulled
 *  towards 0); gaps stay gaps and do not advance it. */
export function smooth(values: (number | null)[], weight = SMOOTH_WEIGHT): (number | null)[] {
  let acc = 0;
  let n = 0;
  return values.map((v) => {
    if (v == null) return null;
    acc = weight * acc + (1 - weight) * v;
    n += 1;
    return acc / (1 - weight ** n);
  });
}

/** The union of every step (sorted), then per source a training-loss series, its smoothed line
 *  when it has SMOOTH_FROM points or more, and, when it has any, a validation-loss series (from
 *  `val` pairs, else the history's val_loss). Non-finite values (a NaN loss) become gaps. */
export function alignSeries(sources: SeriesSource[]): { steps: number[]; series: ChartSeries[] } {
  const all = new Set<number>();
  const vals = sources.map((s) => s.val ?? s.history.filter((h) => h.val_loss != null).map((h) => [h.step, h.val_loss!] as [number, number]));
  sources.forEach((s, i) => { s.history.forEach((h) => all.add(h.step)); vals[i].forEach(([st]) => all.add(st)); });
  const steps = [...all].filter(Number.isFinite).sort((a, b) => a - b);
  const index = new Map(steps.map((st, i) => [st, i]));
  const series: ChartSeries[] = [];
  sources.forEach((s, i) => {
    const loss: (number | null)[] = steps.map(() => null);
    for (const h of s.history) if (Number.isFinite(h.loss)) loss[index.get(h.step)!] = h.loss;
    series.push({ label: `${s.name} loss`, kind: "loss", run: i, values: loss });
    if (loss.filter((v) => v != null).length >= SMOOTH_FROM) {
      series.push({ label: `${s.name} loss (smoothed)`, kind: "smooth", run: i, values: smooth(loss) });
    }
    if (vals[i].length) {
      const v: (number | null)[] = steps.map(() => null);
      for (const [st, x] of vals[i]) if (Number.isFinite(x)) v[index.get(st)!] = x;
      series.push({ label: `${s.name} validation loss`, kind: "val", run: i, values: v });
    }
  });
  return { steps, series };
}

/** Whether there is anything to draw: a run that has not trained a step gets no chart. */
export function hasPoints(sources: SeriesSource[]): boolean {
  return sources.some((s) => s.history.some((h) => Number.isFinite(h.loss)));
}

/** The value shown on hover: "1.234", "—" for a gap. */
export function hoverValue(v: number | null | undefined): string {
  return v == null || !Number.isFinite(v) ? "—" : Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
}
