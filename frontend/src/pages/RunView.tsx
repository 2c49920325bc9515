// AWAITING THE RUNS API (issue #5): the run page against GET /api/runs/{id} (polled every 2 s;
// GET /api/runs/{id}/events (SSE) can replace the polling when it exists) and POST .../cancel.
import { useEffect, useState } from "react";
import { useParams } from "react-router";
import { ErrorText } from "../components/ErrorText";
import { ProjectNav } from "../components/ProjectNav";
import { useProject } from "../components/useProject";
import { formatEta, metricRows, polyline } from "../lib/runs";
import { api } from "../session";

interface Run {
  status: string; progress: number | null; step: number | null; total_steps: number | null; eta_seconds: number | null;
  loss_history: { step: number; loss: number; lr: number }[]; log_tail: string | string[];
  metrics: { before?: Record<string, number>; after?: Record<string, number> } | null; error: string | null;
}
const DONE = ["succeeded", "failed", "cancelled"];

export default function RunView() {
  const pid = Number(useParams().pid);
  const rid = Number(useParams().rid);
  const { project } = useProject(pid);
  const [run, setRun] = useState<Run | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let stop = false, timer = 0;
    const tick = () => api.request<Run>("GET", `/api/runs/${rid}`).then((r) => {
      if (stop) return;
      setRun(r);
      if (!DONE.includes(r.status)) timer = window.setTimeout(tick, 2000);
    }, setError);
    tick();
    return () => { stop = true; clearTimeout(timer); };
  }, [rid]);

  const hist = run?.loss_history ?? [];
  const loss = polyline(hist.map((h) => h.step), hist.map((h) => h.loss), 560, 160);
  const lr = polyline(hist.map((h) => h.step), hist.map((h) => h.lr), 560, 160);
  const rows = metricRows(run?.metrics?.before, run?.metrics?.after);
  const fmt = (v: number | null, d = 3) => (v === null ? "—" : v.toFixed(d));
  return (
    <div className="pad">
      {project && <ProjectNav project={project} />}
      <h1>Run {rid}</h1>
      <ErrorText error={error} />
      {run && (
        <>
          <p>Status <b>{run.status}</b> · step {run.step ?? "—"} / {run.total_steps ?? "—"} · ETA {formatEta(run.eta_seconds)}</p>
          <progress max={1} value={run.progress ?? 0} aria-label="Run progress" /> {Math.round((run.progress ?? 0) * 100)}%
          {!DONE.includes(run.status) && <button onClick={() => api.request("POST", `/api/runs/${rid}/cancel`).catch(setError)}>Cancel run</button>}
          {run.error && <pre role="alert" className="error">{run.error}</pre>}
          {hist.length > 0 && (
            <figure className="card">
              <figcaption>Loss (solid, {fmt(loss.min)}–{fmt(loss.max)}) and learning rate (dashed, up to {lr.max.toExponential(1)})</figcaption>
              <svg width={560} height={160} role="img" aria-label="Loss and learning-rate chart">
                <polyline points={loss.points} fill="none" stroke="#4f8cff" strokeWidth={2} />
                <polyline points={lr.points} fill="none" stroke="#f5a623" strokeDasharray="4 3" />
              </svg>
            </figure>
          )}
          {rows.length > 0 && (
            <table aria-label="Before / after metrics">
              <thead><tr><th>Metric</th><th>Pretrained</th><th>Fine-tuned</th><th>Δ</th><th>Δ %</th></tr></thead>
              <tbody>{rows.map((r) => (
                <tr key={r.metric}><td>{r.metric}</td><td>{fmt(r.before)}</td><td>{fmt(r.after)}</td><td>{fmt(r.delta)}</td>
                  <td>{r.deltaPct === null ? "—" : `${r.deltaPct.toFixed(1)} %`}</td></tr>
              ))}</tbody>
            </table>
          )}
          <h2>Log</h2>
          <pre className="card log">{Array.isArray(run.log_tail) ? run.log_tail.join("\n") : run.log_tail}</pre>
        </>
      )}
    </div>
  );
}
