// The loop in the UI: send a run's worst / most uncertain images to review, retrain with the
// corrections, the lineage with the parent -> child Δ (run page), and the queue bar of the editor.
import { useEffect, useState } from "react";
import { Link, useNavigate } from "react-router";
import type { RunView as Run } from "../api/client";
import { ErrorText } from "./ErrorText";
import { api } from "../session";

export interface QueueItem { image_id: number; file_name: string; status: string; rank: number; reason: string; score: number | null }
export interface Queue { run_id: number | null; items: QueueItem[]; pending: number }
interface Lineage {
  run_id: number; parent_run_id: number | null;
  ancestors: { id: number; kind: string; status: string }[];
  children: { id: number; kind: string; status: string }[];
  comparison: null | { compare_run_id: number; status: string; same_images: boolean;
    rows: { metric: string; parent: number; child: number; delta: number }[] };
}

export const reviewQueue = (pid: number, runId?: number) =>
  api.request<Queue>("GET", `/api/projects/${pid}/review-queue`, { query: { run_id: runId } });

const fmt = (v: number) => v.toFixed(3);

/** Run page: send to review, review in this order, retrain, lineage and the parent column. */
export function LoopPanel({ pid, run }: { pid: number; run: Run }) {
  const navigate = useNavigate();
  const [n, setN] = useState(10);
  const [by, setBy] = useState(run.kind === "predict" ? "uncertainty" : "change");
  const [sent, setSent] = useState<Queue | null>(null);
  const [lineage, setLineage] = useState<Lineage | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const ok = run.status === "succeeded";

  useEffect(() => {
    let live = true;
    api.request<Lineage>("GET", `/api/runs/${run.id}/lineage`).then((l) => live && setLineage(l), () => {});
    return () => { live = false; };
  }, [run.id, run.status]);

  async function send(count: number, how: string) {
    setBusy(true); setError(null);
    try {
      const q = await api.request<Queue>("POST", `/api/runs/${run.id}/review`, { json: { n: count, by: how } });
      setSent(q);
      return q;
    } catch (e) { setError(e); return null; } finally { setBusy(false); }
  }
  async function reviewInOrder() {
    // every image of the run, least confident first, with the model's boxes as drafts to accept or fix
    const q = await send(Math.max(1, Number(run.metrics.n_images ?? 1)), "uncertainty");
    if (!q) return;
    try {
      await api.request("POST", `/api/runs/${run.id}/accept`, { json: { image_ids: q.items.map((i) => i.image_id), min_score: 0 } });
      navigate(`/projects/${pid}/review?run=${run.id}`);
    } catch (e) { setError(e); }
  }
  async function acceptDrafts() {
    if (!sent) return;
    setBusy(true); setError(null);
    try {
      await api.request("POST", `/api/runs/${run.id}/accept`, { json: { image_ids: sent.items.map((i) => i.image_id), min_score: 0 } });
      navigate(`/projects/${pid}/review?run=${run.id}`);
    } catch (e) { setError(e); } finally { setBusy(false); }
  }
  async function retrain() {
    setBusy(true); setError(null);
    try {
      const child = await api.request<Run>("POST", `/api/runs/${run.id}/retrain`);
      navigate(`/projects/${pid}/runs/${child.id}`);
    } catch (e) { setError(e); } finally { setBusy(false); }
  }

  const cmp = lineage?.comparison;
  return (
    <div className="card loop" role="group" aria-label="Review loop">
      <h2>Review loop</h2>
      {ok && (
        <div className="row">
          <label>Images <input className="short" type="number" min={1} value={n} onChange={(e) => setN(Number(e.target.value))} /></label>
          <label>Worst by
            <select value={by} onChange={(e) => setBy(e.target.value)}>
              {run.kind === "predict"
                ? <option value="uncertainty">uncertainty (least confident first)</option>
                : <>
                    <option value="change">change (most regressed first)</option>
                    <option value="missed">missed boxes</option>
                    <option value="false_box">false boxes</option>
                    <option value="wrong_label">wrong labels</option>
                  </>}
            </select>
          </label>
          <button onClick={() => send(n, by)} disabled={busy}>Send to review</button>
          {run.kind === "predict" && <button onClick={reviewInOrder} disabled={busy}>Review in this order</button>}
          {run.kind === "train" && <button onClick={retrain} disabled={busy}>Retrain with the corrections</button>}
        </div>
      )}
      {sent && (
        <p role="status" className="ok">
          {sent.items.length} image(s) sent to review. <Link to={`/projects/${pid}/review?run=${run.id}`}>Open the review queue</Link>
          {run.kind === "predict" && <> · <button onClick={acceptDrafts} disabled={busy}>Add the model's draft boxes to them</button></>}
        </p>
      )}
      <ErrorText error={error} />
      {lineage && (lineage.ancestors.length > 0 || lineage.children.length > 0) && (
        <p aria-label="Lineage">Lineage:{" "}
          {lineage.ancestors.map((a) => <span key={a.id}><Link to={`/projects/${pid}/runs/${a.id}`}>run {a.id}</Link> → </span>)}
          <b>run {run.id}</b>
          {lineage.children.map((c) => <span key={c.id}> → <Link to={`/projects/${pid}/runs/${c.id}`}>run {c.id}</Link> ({c.status})</span>)}
        </p>
      )}
      {cmp && (
        <>
          <p className="muted small">Parent run {lineage?.parent_run_id} evaluated on this run's held-out images
            (run <Link to={`/projects/${pid}/runs/${cmp.compare_run_id}`}>{cmp.compare_run_id}</Link>, {cmp.status})
            {cmp.same_images ? "" : " — the held-out images differ"}.</p>
          {cmp.rows.length > 0 && (
            <table className="metrics" aria-label="Parent and child">
              <thead><tr><th>metric</th><th>parent (run {lineage?.parent_run_id})</th><th>this run</th><th>Δ</th></tr></thead>
              <tbody>
                {cmp.rows.map((r) => (
                  <tr key={r.metric}><td>{r.metric}</td><td>{fmt(r.parent)}</td><td>{fmt(r.child)}</td>
                    <td className={r.delta > 0 ? "ok" : r.delta < 0 ? "error" : ""}>{r.delta > 0 ? "+" : ""}{fmt(r.delta)}</td></tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </div>
  );
}

/** Editor: where this image is in the review queue, and the next one still in review. */
export function QueueBar({ pid, iid, runId }: { pid: number; iid: number; runId: number }) {
  const [q, setQ] = useState<Queue | null>(null);
  useEffect(() => {
    let live = true;
    reviewQueue(pid, runId).then((x) => live && setQ(x), () => {});
    return () => { live = false; };
  }, [pid, iid, runId]);
  if (!q) return null;
  const k = q.items.findIndex((i) => i.image_id === iid);
  const next = q.items.slice(k + 1).find((i) => i.status === "in_review") ?? q.items.find((i) => i.status === "in_review" && i.image_id !== iid);
  const me = q.items[k];
  return (
    <div className="row queue-bar" role="navigation" aria-label="Review queue">
      <span>Review queue of <Link to={`/projects/${pid}/runs/${runId}`}>run {runId}</Link>: {k >= 0 ? `${k + 1} of ${q.items.length}` : "not in the queue"}
        {me && <> · {me.reason}{me.score != null && me.reason !== "empty" && me.reason !== "unparseable" ? ` (${me.score.toFixed(3)})` : ""}</>} · {q.pending} still in review</span>
      {next
        ? <Link className="button" to={`/projects/${pid}/images/${next.image_id}?queue=${runId}`}>Next in queue</Link>
        : <span className={me?.status === "in_review" ? "" : "ok"}>{me?.status === "in_review" ? "The last one in review." : "Queue done."}</span>}
      <Link to={`/projects/${pid}/review?run=${runId}`}>Queue</Link>
    </div>
  );
}

/** Gallery: send the N worst images, by the gallery's error filter (else by change), to review. */
export function SendWorst({ pid, runId, by }: { pid: number; runId: number; by: string }) {
  const [n, setN] = useState(10);
  const [sent, setSent] = useState<Queue | null>(null);
  const [error, setError] = useState<unknown>(null);
  async function send() {
    setError(null);
    try { setSent(await api.request<Queue>("POST", `/api/runs/${runId}/review`, { json: { n, by } })); } catch (e) { setError(e); }
  }
  return (
    <div className="row" role="group" aria-label="Send to review">
      <label>Worst images <input className="short" type="number" min={1} value={n} onChange={(e) => setN(Number(e.target.value))} /></label>
      <button onClick={send}>Send to review ({by === "change" ? "by change" : by.replace("_", " ")})</button>
      {sent && <span role="status" className="ok">{sent.items.length} sent. <Link to={`/projects/${pid}/review?run=${runId}`}>Open the review queue</Link></span>}
      <ErrorText error={error} />
    </div>
  );
}
