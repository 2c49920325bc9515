// The review queue as a grid, in the run's order (worst or least confident first): each image with
// its reason, score and status; a click opens it in the editor with the queue's next / previous.
import { useEffect, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { AuthImage } from "../components/AuthImage";
import { ErrorText } from "../components/ErrorText";
import { ProjectNav } from "../components/ProjectNav";
import { reviewQueue, type Queue } from "../components/Loop";
import { useProject } from "../components/useProject";

export default function ReviewQueue() {
  const pid = Number(useParams().pid);
  const [params] = useSearchParams();
  const runParam = params.get("run");
  const { project } = useProject(pid);
  const [q, setQ] = useState<Queue | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    reviewQueue(pid, runParam ? Number(runParam) : undefined).then(setQ, setError);
  }, [pid, runParam]);
  return (
    <div className="pad">
      {project && <ProjectNav project={project} />}
      <p className="muted"><Link to={`/projects/${pid}`}>← Dataset</Link></p>
      <h1>Review queue{q?.run_id ? <> of <Link to={`/projects/${pid}/runs/${q.run_id}`}>run {q.run_id}</Link></> : ""}</h1>
      <ErrorText error={error} />
      {q && q.items.length === 0 && <p>Nothing queued. Send a run's worst images to review from its run page.</p>}
      {q && q.items.length > 0 && (
        <>
          <p>{q.items.length} image(s) in this order, {q.pending} still in review.</p>
          <ol className="queue-grid" aria-label="Review queue">
            {q.items.map((it) => (
              <li key={it.image_id} className={`cell st-${it.status}`}>
                <Link to={`/projects/${pid}/images/${it.image_id}?queue=${q.run_id}`} title={it.file_name}>
                  <AuthImage imageId={it.image_id} thumbnail alt={it.file_name} />
                  <span className="small">#{it.rank + 1} {it.reason}{it.score != null && it.reason !== "empty" && it.reason !== "unparseable" ? ` ${it.score.toFixed(3)}` : ""}</span>
                  <span className={`status st-${it.status} small`}>{it.status.replace("_", " ")}</span>
                </Link>
              </li>
            ))}
          </ol>
        </>
      )}
    </div>
  );
}
