import type { TableRow } from "../api/client";
import { type Baseline, fmt, fmtDelta, fmtPct, hasBaseline, tableSections, trend, versusBaseline } from "../lib/runs";

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

const MAJORITY_HELP = "per question template (left / right, in front / behind, ...), always the train split's "
  + "most common answer, no model. A model that does not beat it answers what is usual, not what it sees.";

const DEPENDENCE_HELP = "Does the model look at the image? Distinct boxes: the share of held-out images whose "
  + "predicted boxes differ from every other image's. Centre r: the correlation between each true box's centre and "
  + "the centre of the predicted box overlapping it (fractions of the frame). One box on every image scores 0 and —.";

const ALONE_HELP = "the run pools the adapter's boxes with the base model's (pool_base_boxes: weighted box "
  + "fusion at IoU 0.5), so Fine-tuned is the pool and this column the adapter's own boxes. A short fine-tune "
  + "can forget objects the base still finds; the pool keeps them, at the base's precision.";

const BASELINES: { key: Baseline; title: string; help: string }[] = [
  { key: "prior", title: "Location prior", help: PRIOR_HELP },
  { key: "majority", title: "Majority answer", help: MAJORITY_HELP },
  { key: "adapter_alone", title: "Adapter alone", help: ALONE_HELP },
];

/** A baseline's header and cells, shown only where some row has a value. */
function baselinesOf(rows: TableRow[]) {
  return BASELINES.filter((b) => hasBaseline(rows, b.key));
}
function BaselineCells({ r, shown }: { r: TableRow; shown: typeof BASELINES }) {
  return <>{shown.map((b) => {
    const vs = versusBaseline(r, b.key);
    return <td key={b.key} className={`num prior-${vs || "none"}`}
      title={vs ? `fine-tuned is ${vs} the ${b.title.toLowerCase()}` : undefined}>{fmt(r[b.key])}</td>;
  })}</>;
}

const HEAD = <><th className="num">Pretrained</th><th className="num">Fine-tuned</th><th className="num">Δ</th><th className="num">Δ %</th></>;

/** The before / after evaluation of a run (metrics.table from worker/runner.py): the overall
 *  metrics, per-class AP / AP50 / mean IoU, VQA accuracy per question type. */
export function Evaluation({ table }: { table: TableRow[] }) {
  const { overall, perClass, vqaTypes } = tableSections(table);
  const shown = baselinesOf(overall), shownVqa = baselinesOf(vqaTypes);
  return (
    <section aria-labelledby="eval-h" className="evaluation">
      <h2 id="eval-h">Evaluation on the held-out split</h2>
      <table aria-label="Before / after metrics" className="metrics">
        <thead><tr><th>Metric</th>{HEAD}{shown.map((b) => <th key={b.key} className="num" title={b.help}>{b.title}</th>)}</tr></thead>
        <tbody>{overall.map((r) => (
          <tr key={r.metric}><td>{r.metric}</td><Cells r={r} /><BaselineCells r={r} shown={shown} /></tr>))}</tbody>
      </table>
      {[...new Set([...shown, ...shownVqa])].map((b) => <p key={b.key} className="hint">{b.title}: {b.help}</p>)}
      {overall.some((r) => r.metric === "distinct boxes") && <p className="hint">{DEPENDENCE_HELP}</p>}
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
          <thead><tr><th>Question type</th>{HEAD}{shownVqa.map((b) => <th key={b.key} className="num" title={b.help}>{b.title}</th>)}</tr></thead>
          <tbody>{vqaTypes.map((r) => <tr key={r.qtype}><td>{r.qtype}</td><Cells r={r} /><BaselineCells r={r} shown={shownVqa} /></tr>)}</tbody>
        </table>
      )}
    </section>
  );
}
