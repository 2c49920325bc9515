// One run, live (server-sent events, polling as the fallback): status, progress, ETA, the loss /
// learning-rate chart, the log tail, cancel; when it succeeded, the adapter (download, merge), the
// before / after evaluation and the way into the comparison gallery.
import { useEffect, useState } from "react";
import type { RunView as RunViewT } from "../api/client";
import { Link, useParams } from "react-router";
import { FINISHED } from "../api/client";
import { ErrorText } from "../components/ErrorText";
import { Evaluation } from "../components/Evaluation";
import { LossChart } from "../components/LossChart";
import { RunConfig } from "../components/RunConfig";
import { LoopPanel } from "../components/Loop";
import { ProjectNav } from "../components/ProjectNav";
import { useProject } from "../components/useProject";
import { useRun } from "../components/useRun";
import { formatBytes, formatEta, percent } from "../lib/runs";
import { api } from "../session";

export default function RunView() {
  const pid = Number(useParams().pid);
  const rid = Number(useParams().rid);
  const { project } = useProject(pid);
  const { run, setRun, error, setError, live, refresh } = useRun(rid);
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  // What the run trains on (the snapshot's counts and status filter): fixed at launch, read once.
  const [snap, setSnap] = useState<RunViewT["snapshot"]>();
  useEffect(() => { api.getRun(rid).then((r) => setSnap(r.snapshot), () => {}); }, [rid]);

  const finished = run ? FINISHED.includes(run.status) : false;
  const pct = percent(run?.progress);
  const table = run?.metrics?.table ?? [];

  async function cancel() {
    setError(null);
    try { setRun(await api.cancelRun(rid)); } catch (e) { setError(e); }
  }
  async function download() {
    setBusy(true);
    try {
      const url = URL.createObjectURL(await api.adapterBlob(rid));
      const a = document.createElement("a");
      a.href = url;
      a.download = `run-${rid}-adapter.zip`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) { setError(e); } finally { setBusy(false); }
  }
  async function merge() {
    setError(null);
    try {
      await api.mergeRun(rid);
      setNote("Merge queued on the gpu worker; the merged model is written to the run's folder.");
      refresh((r) => r.merged);
    } catch (e) { setError(e); }
  }

  return (
    <div className="pad">
      {project && <ProjectNav project={project} />}
      <p className="muted"><Link to={`/projects/${pid}/runs`}>← Runs</Link></p>
      <h1>Run {rid}{run ? ` · ${run.kind}` : ""}</h1>
      <ErrorText error={error} />
      {run && (
        <>
          <div className="card run-status">
            <p>
              Status <b className={`status st-${run.status}`} data-testid="run-status">{run.status}</b>
              {run.cancel_requested && !finished && " (cancelling…)"}
              {run.phase && !finished && <> · phase <b>{run.phase}</b></>}
              {live && <span className="muted small"> · live ({live === "stream" ? "event stream" : "polling"})</span>}
            </p>
            {snap && (
              <p data-testid="run-data">Data: <b>{snap.n_images}</b> images, {snap.n_boxes} boxes,
                {" "}{snap.n_qa} QA pairs · images with status <b>{snap.image_status ?? "any"}</b></p>
            )}
            <div className="row progress-row">
              <progress max={100} value={pct} aria-label="Run progress" />
              <b data-testid="run-percent">{pct} %</b>
              <span>step {run.step} / {run.total_steps ?? "—"}</span>
              <span>ETA {finished ? "—" : formatEta(run.eta_seconds)}</span>
              <span>{run.samples_per_s != null ? `${run.samples_per_s.toFixed(1)} samples/s` : "— samples/s"}</span>
              {run.attempts > 1 && <span className="warn">attempt {run.attempts} of {run.max_attempts}</span>}
            </div>
            <div className="row">
              <button onClick={cancel} disabled={finished || run.cancel_requested}>Cancel run</button>
              {run.status === "succeeded" && run.kind === "train" && (
                <>
                  <button onClick={download} disabled={busy || !run.adapter_bytes}>Download adapter ({formatBytes(run.adapter_bytes)})</button>
                  <button onClick={merge} disabled={run.merged}>{run.merged ? "Merged into the base" : "Merge adapter into base"}</button>
                </>
              )}
              {run.status === "succeeded" && run.kind !== "predict" && (
                <Link className="button" to={`/projects/${pid}/runs/${rid}/gallery`}>Open the comparison gallery</Link>
              )}
              <Link className="button" to={`/projects/${pid}/runs?from=${rid}#launch-h`}>Launch again with changes</Link>
              {run.status === "succeeded" && run.kind === "train" && <Link className="button" to={`/projects/${pid}/runs/${rid}/try`}>Try it</Link>}
            </div>
            {note && <p role="status" className="ok">{note}</p>}
          </div>
          {run.status === "failed" && (
            <div className="card" role="alert">
              <p className="error"><b>Failed:</b> {run.error}</p>
              {run.traceback && <details><summary>Traceback</summary><pre className="log">{run.traceback}</pre></details>}
            </div>
          )}
          <RunConfig run={run} />
          {run.kind === "train" && (
            <LossChart sources={[{ name: `run ${rid}`, history: run.loss_history, val: run.metrics.val_loss as [number, number][] | undefined }]} />
          )}
          {run.kind === "train" && !run.loss_history.length && (
            <p className="muted" data-testid="no-chart">The loss chart appears with the first training step{run.phase === "before" ? " (now: evaluating the base model first)" : ""}.</p>
          )}
          {table.length > 0 && <Evaluation table={table} />}
          {(run.status === "succeeded" || run.parent_run_id != null) && <LoopPanel pid={pid} run={run} />}
          {run.kind === "predict" && run.status === "succeeded" && (
            <p>{String(run.metrics.n_boxes ?? 0)} boxes predicted on {String(run.metrics.n_images ?? 0)} images.
              Open an image in the <Link to={`/projects/${pid}`}>dataset</Link> to review them.</p>
          )}
          <h2>Log</h2>
          <pre className="card log" aria-label="Log tail" tabIndex={0}>{run.log_tail.join("\n")}</pre>
        </>
      )}
    </div>
  );
}
