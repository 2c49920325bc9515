import { fmt, polyline } from "../lib/runs";

const W = 640, H = 180, PAD = 4;

/** Loss (solid, left scale) and learning rate (dashed, right scale) per optimiser step; plain SVG
 *  redrawn on every run event. */
export function LossChart({ history }: { history: { step: number; loss: number; lr: number }[] }) {
  const steps = history.map((h) => h.step);
  const loss = polyline(steps, history.map((h) => h.loss), W - 2 * PAD, H - 2 * PAD);
  const lr = polyline(steps, history.map((h) => h.lr), W - 2 * PAD, H - 2 * PAD);
  const last = history[history.length - 1];
  return (
    <figure className="card chart">
      <figcaption>
        <span className="key loss">— loss</span> {fmt(loss.min)}–{fmt(loss.max)}{last ? `, now ${fmt(last.loss)}` : ""}
        {" · "}<span className="key lr">- - learning rate</span> up to {lr.max ? lr.max.toExponential(1) : "—"}
        {" · "}steps {steps[0] ?? "—"}–{last?.step ?? "—"}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img" data-testid="loss-chart" data-points={history.length}
        aria-label={`Loss and learning rate over ${history.length} logged steps`}>
        <rect x={0} y={0} width={W} height={H} className="chart-bg" />
        {[0.25, 0.5, 0.75].map((t) => <line key={t} x1={0} x2={W} y1={H * t} y2={H * t} className="grid" />)}
        <g transform={`translate(${PAD},${PAD})`}>
          <polyline points={lr.points} fill="none" stroke="#f5a623" strokeWidth={1.5} strokeDasharray="5 4" />
          <polyline points={loss.points} fill="none" stroke="#4f8cff" strokeWidth={2} />
        </g>
      </svg>
    </figure>
  );
}
