// Two or more runs side by side: headline metrics with Δ against the first run, the loss and
// validation-loss curves overlaid, and the configuration keys that differ.
import { Fragment, useEffect, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import type { RunView } from "../api/client";
import { ErrorText } from "../components/ErrorText";
import { LossChart, RUN_COLOURS } from "../components/LossChart";
import { ProjectNav } from "../components/ProjectNav";
import { useProject } from "../components/useProject";
import { compareMetrics, configDiff, parseIds } from "../lib/compare";
import { fmt, fmtDelta, trend } from "../lib/runs";
import { api } from "../session";

export default function Compare() {
  const pid = Number(useParams().pid);
  const { project } = useProject(pid);
  const ids = parseIds(useSearchParams()[0].get("runs"));
  const [runs, setRuns] = useState<RunView[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [onlyDiff, setOnlyDiff] = useState(true);
  const key = ids.join(",");
  useEffect(() => {
    Promise.all(ids.map((id) => api.getRun(id))).then(setRuns, setError);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

  if (ids.length < 2) return <div className="pad"><p>Pick two or more runs to compare on the <Link to={`/projects/${pid}/runs`}>Runs page</Link>.</p></div>;
  const rows = runs ? compareMetrics(runs) : [];
  const diff = runs ? configDiff(runs.map((r) => r.config)) : [];
  const shown = onlyDiff ? diff.filter((d) => d.differs) : diff;
  return (
    <div className="pad">
      {project && <ProjectNav project={project} />}
      <p className="muted"><Link to={`/projects/${pid}/runs`}>← Runs</Link></p>
      <h1>Compare runs {ids.join(", ")}</h1>
      <ErrorText error={error} />
      {runs && (
        <>
          <section aria-labelledby="cmp-m">
            <h2 id="cmp-m">Metrics on the held-out split</h2>
            {rows.length === 0 ? <p className="muted">None of these runs has finished an evaluation yet.</p> : (
              <table aria-label="Metrics side by side" className="metrics">
                <thead><tr><th>Metric</th>{runs.map((r, i) => (
                  <Fragment key={r.id}><th className="num" style={{ color: RUN_COLOURS[i % RUN_COLOURS.length] }}>Run {r.id}</th>
                    {i > 0 && <th className="num">Δ vs run {runs[0].id}</th>}</Fragment>))}</tr></thead>
                <tbody>{rows.map((row) => (
                  <tr key={row.metric}><td>{row.metric}</td>{row.values.map((v, i) => (
                    <Fragment key={i}><td className="num">{fmt(v)}</td>
                      {i > 0 && <td className={`num ${trend(row.deltas[i])}`}>{fmtDelta(row.deltas[i])}</td>}</Fragment>))}</tr>
                ))}</tbody>
              </table>
            )}
          </section>
          <LossChart title="Training loss (solid) and validation loss (dashed)"
            sources={runs.filter((r) => r.kind === "train").map((r) => ({ name: `run ${r.id}`, history: r.loss_history, val: r.metrics.val_loss as [number, number][] | undefined }))} />
          <section aria-labelledby="cmp-c">
            <h2 id="cmp-c">Configuration</h2>
            <label className="inline"><input type="checkbox" checked={onlyDiff} onChange={(e) => setOnlyDiff(e.target.checked)} /> only what differs ({diff.filter((d) => d.differs).length} of {diff.length} settings)</label>
            <table aria-label="Configuration diff" className="metrics diff">
              <thead><tr><th>Setting</th>{runs.map((r) => <th key={r.id}>Run {r.id}</th>)}</tr></thead>
              <tbody>{shown.map((d) => (
                <tr key={d.key} data-differs={d.differs}><td>{d.key}</td>{d.values.map((v, i) => <td key={i} className={d.differs ? "differs" : ""}>{v}</td>)}</tr>
              ))}</tbody>
            </table>
          </section>
        </>
      )}
    </div>
  );
}
