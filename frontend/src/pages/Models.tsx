// The model catalogue (GET /api/models): the demo model (ready, or being built as a job on the
// worker queue with progress and a log), local save_pretrained folders, and the hub presets.
import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router";
import type { CatalogModel, PretrainedCard } from "../api/client";
import { ErrorText } from "../components/ErrorText";
import { formatBytes, formatEta, percent } from "../lib/runs";
import { api, useSession } from "../session";

export const fmtParams = (n: number | null | undefined) =>
  n == null ? "—" : n >= 1e9 ? `${(n / 1e9).toFixed(1)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : `${(n / 1e3).toFixed(0)} K`;

/** The demo base's card: which tracks it was pre-trained on, which it never saw, its own held-out numbers. */
function PretrainedFacts({ card }: { card: PretrainedCard }) {
  const nums = Object.entries(card.held_out ?? {}).filter(([k, v]) => typeof v === "number" && k !== "frames") as [string, number][];
  const heldTracks = card.held_out?.tracks, frames = card.held_out?.frames;
  return (
    <dl className="config-list" data-testid="demo-pretrained">
      <dt>Pre-trained on</dt><dd>{card.data} — {card.tracks?.join(", ")}</dd>
      <dt>Never seen</dt><dd>{card.never_seen?.join(", ")} (the demo fine-tunes and evaluates on these)</dd>
      {card.cpu_seconds != null && <><dt>Pre-training</dt><dd>{card.steps} steps, {(card.cpu_seconds / 60).toFixed(0)} min of CPU</dd></>}
      {nums.length > 0 && <><dt>Zero-shot{Array.isArray(heldTracks) ? ` on ${heldTracks.join(", ")}` : ""}{typeof frames === "number" ? ` (${frames} frames)` : ""}</dt>
        <dd>{nums.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(" · ")}</dd></>}
    </dl>
  );
}

export default function Models() {
  const { user } = useSession();
  const [items, setItems] = useState<CatalogModel[] | null>(null);
  const [dir, setDir] = useState("");
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => api.listModels().then((r) => { setItems(r.items); setDir(r.models_dir); return r.items; },
    (e) => { setError(e); return null; }), []);
  useEffect(() => { load(); }, [load]);
  // Poll while a model is being built, whether it was building on arrival or a build was just queued.
  useEffect(() => {
    if (!items?.some((m) => m.status === "building")) return;
    const timer = window.setTimeout(load, 2000);
    return () => clearTimeout(timer);
  }, [items, load]);

  async function build() {
    setError(null);
    try { await api.buildDemoModel(); await load(); } catch (e) { setError(e); }
  }

  const demo = items?.find((m) => m.source === "demo");
  const job = demo?.job;
  return (
    <div className="pad">
      <h1>Models</h1>
      <p className="muted">The base models a run can start from. Pick one in a project's <b>Runs → Launch a run</b>; a
        local folder copied into <code>{dir || "<data>/models"}</code> (or <code>studio models import DIR</code>) shows up here.</p>
      <ErrorText error={error} />
      {demo && (
        <section className="card banner" aria-labelledby="demo-h" data-testid="demo-model">
          <h2 id="demo-h">{demo.name}</h2>
          <p>Status <b data-testid="demo-model-status" className={`status st-${demo.status}`}>{demo.status}</b> · {demo.note}</p>
          {demo.status === "building" && job && (
            <div className="row progress-row">
              <progress max={100} value={percent(job.progress)} aria-label="Demo model build progress" />
              <b>{percent(job.progress)} %</b>
              {job.total_steps ? <span>step {job.step ?? 0} / {job.total_steps}</span>
                : <span>{job.state === "queued" ? "waiting for a worker…" : "reading the frames, building the base…"}</span>}
              <span>ETA {formatEta(job.eta_seconds)}</span>
            </div>
          )}
          {(demo.status === "not_built" || demo.status === "failed") && (
            user?.is_admin ? <button className="primary" onClick={build}>Build the demo model</button>
              : <p className="muted">An admin can build it here, or run <code>studio models build demo</code>.</p>
          )}
          {demo.pretrained?.tracks && demo.pretrained.tracks.length > 0 && <PretrainedFacts card={demo.pretrained} />}
          {demo.status === "ready" && <p>Next: open the demo project's Runs page and launch a train run from it.</p>}
          {demo.status === "ready" && user?.is_admin && (
            <p className="muted small">The weights ship with the studio. <button onClick={build}>Re-train it from scratch</button>{" "}
              on the worker (the seeded pre-training script; an hour or more of CPU, needs the shared frames).</p>
          )}
          {job && job.log.length > 0 && (
            <details open={demo.status === "building"}><summary>Build log</summary>
              <pre className="log" aria-label="Build log">{job.log.slice(-20).join("\n")}</pre></details>
          )}
        </section>
      )}
      {items === null ? <p className="muted">Loading the catalogue…</p> : (
        <table aria-label="Model catalogue" className="model-list">
          <thead><tr><th>Model</th><th>Source</th><th>Family</th><th>Status</th><th>Size</th><th>Parameters</th><th>Pre-trained here</th></tr></thead>
          <tbody>{items.map((m) => (
            <tr key={m.id} data-model={m.name}>
              <td title={m.id}>{m.name}{m.note && <div className="muted small">{m.note}</div>}</td>
              <td>{m.source}</td><td>{m.family ?? "—"}</td><td>{m.status.replace("_", " ")}</td>
              <td>{formatBytes(m.size_bytes)}</td><td>{fmtParams(m.parameters)}</td>
              <td className="small">{m.pretrained ? `${m.pretrained.data ?? "?"} (${m.pretrained.steps ?? "?"} steps)` : "—"}</td>
            </tr>))}</tbody>
        </table>
      )}
      {items && demo?.status !== "ready" && items.filter((m) => m.source === "local").length === 0 && (
        <p className="muted">No local model folder yet: build the demo model above, or <code>studio models import PATH</code>.</p>
      )}
      <p><Link to="/">← Projects</Link></p>
    </div>
  );
}
