import type { TableRow } from "../api/client";
import { fmt, fmtDelta, fmtPct, hasPrior, tableSections, trend, versusPrior } from "../lib/runs";

function Cells({ r }: { r: TableRow }) {
  const t = trend(r.delta);
  return (
    <>
      <td className="num">{fmt(r.pretrained)}</td><td className="num">{fmt(r.finetuned)}</td>
      <td className={`num ${t}`}>{fmtDelta(r.delta)}</td><td className={`num ${t}`}>{fmtPct(r.delta_pct)}</td>
    </>
  );
}

const PRIOR_HELP = "one fixed box per label (the train split's median box) on every held-out image, no model. "
  + "Where objects sit in the same place in most frames it is high; a fine-tuned model that does not beat it "
  + "has learnt where objects usually are, not to see them.";

const HEAD = <><th className="num">Pretrained</th><th className="num">Fine-tuned</th><th className="num">Δ</th><th className="num">Δ %</th></>;

/** The before / after evaluation of a run (metrics.table from worker/runner.py): the overall
 *  metrics, per-class AP / AP50 / mean IoU, VQA accuracy per question type. */
export function Evaluation({ table }: { table: TableRow[] }) {
  const { overall, perClass, vqaTypes } = tableSections(table);
  const prior = hasPrior(overall);
  return (
    <section aria-labelledby="eval-h" className="evaluation">
      <h2 id="eval-h">Evaluation on the held-out split</h2>
      <table aria-label="Before / after metrics" className="metrics">
        <thead><tr><th>Metric</th>{HEAD}{prior && <th className="num" title={PRIOR_HELP}>Location prior</th>}</tr></thead>
        <tbody>{overall.map((r) => (
          <tr key={r.metric}><td>{r.metric}</td><Cells r={r} />
            {prior && <td className={`num prior-${versusPrior(r) || "none"}`}
              title={versusPrior(r) ? `fine-tuned is ${versusPrior(r)} the prior` : undefined}>{fmt(r.prior)}</td>}
          </tr>))}</tbody>
      </table>
      {prior && <p className="hint">Location prior: {PRIOR_HELP}</p>}
      {perClass.length > 0 && (
        <table aria-label="Per-class AP and IoU" className="metrics">
          <thead><tr><th>Class</th><th>Metric</th>{HEAD}</tr></thead>
          <tbody>{perClass.flatMap((c) => (["ap", "ap50", "iou"] as const).filter((k) => c[k]).map((k, i) => (
            <tr key={`${c.cls}-${k}`}>{i === 0 && <th scope="rowgroup" rowSpan={[c.ap, c.ap50, c.iou].filter(Boolean).length}>{c.cls}</th>}
              <td>{k === "ap" ? "AP" : k === "ap50" ? "AP50" : "mean IoU"}</td><Cells r={c[k]!} /></tr>
          )))}</tbody>
        </table>
      )}
      {vqaTypes.length > 0 && (
        <table aria-label="VQA accuracy per question type" className="metrics">
          <thead><tr><th>Question type</th>{HEAD}</tr></thead>
          <tbody>{vqaTypes.map((r) => <tr key={r.qtype}><td>{r.qtype}</td><Cells r={r} /></tr>)}</tbody>
        </table>
      )}
    </section>
  );
}
