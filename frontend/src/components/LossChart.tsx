// Loss charts with uPlot: optimiser steps on x (ticks, step numbers), loss on y, the training loss
// solid (faint under its smoothed line on longer runs) and the validation loss dashed, one colour
// per run (the compare page overlays several runs); hovering shows every series' value at that
// step in the legend. No chart before step 1.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { alignSeries, hasPoints, hoverValue, type SeriesSource } from "../lib/chart";

export const RUN_COLOURS = ["#4f8cff", "#f5a623", "#3ecf8e", "#e5484d", "#b07cff", "#2bc4d6"];
const VAL_COLOURS = ["#a9c8ff", "#ffd699", "#a6ecc9", "#f4a3a5", "#dcc4ff", "#a3e6ee"]; // the same hue, lighter
const STEP_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000];
const AXIS = { stroke: "#c9ccd3", grid: { stroke: "#2a2d35", width: 1 }, ticks: { stroke: "#2a2d35", width: 1 } };

export function LossChart({ sources, title = "Loss", height = 240 }: { sources: SeriesSource[]; title?: string; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const show = hasPoints(sources);
  const { steps, series } = alignSeries(sources);
  const smoothed = new Set(series.filter((s) => s.kind === "smooth").map((s) => s.run));
  const key = JSON.stringify([steps.length, series.map((s) => s.label)]);
  const plot = useRef<uPlot | null>(null);

  // (re)build when the set of series changes; otherwise only new data
  useEffect(() => {
    if (!show || !box.current) return;
    const width = Math.max(320, Math.min(900, box.current.clientWidth || 640));
    const opts: uPlot.Options = {
      width, height, title,
      scales: { x: { time: false } },
      // steps are whole numbers: integer ticks only
      axes: [{ ...AXIS, label: "step", incrs: STEP_INCRS, values: (_u, ticks) => ticks.map((t) => String(Math.round(t))) },
        { ...AXIS, label: "loss", size: 60 }],
      cursor: { drag: { x: true, y: false } },
      series: [
        { label: "step", value: (_u, v) => (v == null ? "—" : String(v)) },
        ...series.map((s) => ({
          // a raw loss under its smoothed line is drawn faint (the same hue, 40 % opaque)
          label: s.label, stroke: (s.kind === "val" ? VAL_COLOURS : RUN_COLOURS)[s.run % RUN_COLOURS.length]
            + (s.kind === "loss" && smoothed.has(s.run) ? "66" : ""),
          width: s.kind === "loss" ? 1.5 : 2, dash: s.kind === "val" ? [6, 4] : undefined, spanGaps: true,
          points: { show: s.kind === "val" || (s.kind === "loss" && steps.length < 30), size: s.kind === "val" ? 8 : 5 },
          value: (_u: uPlot, v: number | null) => hoverValue(v),
        })),
      ],
    };
    plot.current?.destroy();
    plot.current = new uPlot(opts, [steps, ...series.map((s) => s.values)] as uPlot.AlignedData, box.current);
    return () => { plot.current?.destroy(); plot.current = null; };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, show, height, title]);

  useEffect(() => {
    plot.current?.setData([steps, ...series.map((s) => s.values)] as uPlot.AlignedData);
  });

  if (!show) return null;
  const points = sources.reduce((n, s) => n + s.history.length, 0);
  return (
    <figure className="card chart" data-testid="loss-chart" data-points={points}
      aria-label={`${title}: ${series.map((s) => s.label).join(", ")} over steps ${steps[0]}–${steps[steps.length - 1]}`}>
      <div ref={box} />
    </figure>
  );
}
