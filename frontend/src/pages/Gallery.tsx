// The comparison gallery of a run: each held-out image as ground truth | before | after with the
// boxes (and scores) drawn, sorted by the per-image change of F1, filtered by label and by the error
// left after fine-tuning — all from GET /api/runs/{id}/gallery. From here: the box editor to fix a
// label, or accept the model's boxes into the image (POST /api/runs/{id}/accept).
import { useEffect, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import type { GalleryBox, GalleryItem, ImageStats } from "../api/client";
import { AuthImage } from "../components/AuthImage";
import { BoxOverlay } from "../components/BoxOverlay";
import { ErrorText } from "../components/ErrorText";
import { ProjectNav } from "../components/ProjectNav";
import { SendWorst } from "../components/Loop";
import { useProject } from "../components/useProject";
import { apiQuery, changeText, ERRORS, PAGE, parseState, shapes, SORTS, stateToSearch, statsText, type GalleryState } from "../lib/gallery";
import { api } from "../session";

export default function Gallery() {
  const pid = Number(useParams().pid);
  const rid = Number(useParams().rid);
  const { project } = useProject(pid);
  const [search, setSearch] = useSearchParams();
  const state = parseState(search);
  const [items, setItems] = useState<GalleryItem[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [minScore, setMinScore] = useState(0);
  const key = stateToSearch(state);

  useEffect(() => {
    let stop = false;
    setError(null);
    api.gallery(rid, apiQuery(parseState(key))).then((r) => { if (!stop) { setItems(r.items); setTotal(r.total); } }, setError);
    return () => { stop = true; };
  }, [rid, key]);

  const update = (patch: Partial<GalleryState>) => setSearch(stateToSearch({ ...state, offset: 0, ...patch }));
  const colors = new Map((project?.labels ?? []).map((l) => [l.name, l.color]));
  const colorOf = (name: string) => colors.get(name) ?? "#ffcc00";

  return (
    <div className="pad">
      {project && <ProjectNav project={project} />}
      <p className="muted"><Link to={`/projects/${pid}/runs/${rid}`}>← Run {rid}</Link></p>
      <h1>Comparison gallery · run {rid}</h1>
      <form className="row filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>Sort
          <select value={state.sort} onChange={(e) => update({ sort: e.target.value as GalleryState["sort"] })}>
            {SORTS.map(([v, t]) => <option key={v} value={v}>{t}</option>)}
          </select>
        </label>
        <label>Label
          <select value={state.label} onChange={(e) => update({ label: e.target.value })}>
            <option value="">any</option>
            {(project?.labels ?? []).map((l) => <option key={l.id} value={l.name}>{l.name}</option>)}
          </select>
        </label>
        <label>Error after fine-tuning
          <select value={state.error} onChange={(e) => update({ error: e.target.value as GalleryState["error"] })}>
            {ERRORS.map(([v, t]) => <option key={v} value={v}>{t}</option>)}
          </select>
        </label>
        <label>Accept boxes scoring at least
          <input type="number" className="short" min={0} max={1} step={0.05} value={minScore} onChange={(e) => setMinScore(Number(e.target.value))} />
        </label>
      </form>
      <SendWorst pid={pid} runId={rid} by={state.error || "change"} />
      <ErrorText error={error} />
      <p className="muted" aria-live="polite">
        {items === null ? "Loading…" : total ? `${total} images, showing ${state.offset + 1}–${state.offset + items.length}` : "No image matches."}
      </p>
      <ul className="gallery">
        {(items ?? []).map((it) => <GalleryRow key={it.image_id} pid={pid} rid={rid} item={it} colorOf={colorOf} minScore={minScore} />)}
      </ul>
      <div className="row">
        <button disabled={state.offset === 0} onClick={() => update({ offset: Math.max(0, state.offset - PAGE) })}>Previous page</button>
        <button disabled={state.offset + PAGE >= total} onClick={() => update({ offset: state.offset + PAGE })}>Next page</button>
      </div>
    </div>
  );
}

function Panel({ title, item, boxes, stats, raw, colorOf }: {
  title: string; item: GalleryItem; boxes: GalleryBox[] | null; stats?: ImageStats | null; raw?: string | null; colorOf: (l: string) => string;
}) {
  const [zoom, setZoom] = useState(false);
  const picture = (
    <>
      <AuthImage imageId={item.image_id} thumbnail={false} alt={`${item.file_name} (${title})`} />
      {boxes && <BoxOverlay width={item.width} height={item.height} boxes={shapes(boxes, colorOf)} labels={[]} />}
    </>
  );
  return (
    <figure className="panel" aria-label={`${title}: ${item.file_name}`}>
      <figcaption><b>{title}</b>{boxes && ` · ${boxes.length} boxes`}</figcaption>
      <button className="panel-image plain" onClick={() => setZoom(true)} aria-label={`Zoom ${title}: ${item.file_name}`}>{picture}</button>
      {stats !== undefined && <p className="small muted">{statsText(stats)}</p>}
      {raw !== undefined && (
        <p className="raw small" data-testid="raw-output"><span className="muted">model output: </span>{raw == null || raw === "" ? <i>(nothing)</i> : <code>{raw}</code>}</p>
      )}
      {zoom && (
        <div className="zoom" role="dialog" aria-label={`${title}, zoomed`} onClick={() => setZoom(false)}
          onKeyDown={(e) => e.key === "Escape" && setZoom(false)}>
          <div className="panel-image zoomed" style={{ width: "min(90vw, 1200px)" }}>{picture}</div>
          <button autoFocus onClick={() => setZoom(false)}>Close</button>
        </div>
      )}
    </figure>
  );
}

function GalleryRow({ pid, rid, item, colorOf, minScore }: {
  pid: number; rid: number; item: GalleryItem; colorOf: (l: string) => string; minScore: number;
}) {
  const [result, setResult] = useState("");
  const [error, setError] = useState<unknown>(null);
  const change = changeText(item.change);
  // what "accept" would add: the latest phase's boxes at or above the score
  const candidates = (item.after ?? item.before ?? []).filter((b) => (b.score ?? 0) >= minScore).length;
  const direction = item.change == null || Math.abs(item.change) < 1e-9 ? "" : item.change > 0 ? "up" : "down";
  async function accept() {
    setError(null);
    try {
      const r = await api.accept(rid, { image_ids: [item.image_id], min_score: minScore });
      setResult(`Added ${r.created} model box${r.created === 1 ? "" : "es"} to the image (${r.skipped} skipped: below the score, unknown label or already there).`);
    } catch (e) { setError(e); }
  }
  return (
    <li className="card gallery-item" data-image-id={item.image_id}>
      <div className="row">
        <b>{item.file_name}</b>
        {change && <span className={`change ${direction}`}>{change}</span>}
        <span className="spacer" />
        <Link to={`/projects/${pid}/images/${item.image_id}`}>Fix labels in the box editor</Link>
        <button onClick={accept} disabled={candidates === 0}
          title={candidates === 0 ? "the model drew no box at or above this score: nothing to accept" : undefined}>
          {candidates === 0 ? "Nothing to accept" : `Accept the model's ${candidates} box${candidates === 1 ? "" : "es"}`}</button>
      </div>
      <div className="panels">
        <Panel title="Ground truth" item={item} boxes={item.ground_truth} colorOf={colorOf} />
        <Panel title="Before" item={item} boxes={item.before} stats={item.stats_before} raw={item.before ? item.raw_before ?? null : undefined} colorOf={colorOf} />
        <Panel title="After" item={item} boxes={item.after} stats={item.stats_after} raw={item.after ? item.raw_after ?? null : undefined} colorOf={colorOf} />
      </div>
      {result && <p role="status" className="ok">{result}</p>}
      <ErrorText error={error} />
    </li>
  );
}
