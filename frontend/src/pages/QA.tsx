import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { ApiError, QA_FAMILIES, type Label, type QAPair } from "../api/client";
import { AuthImage } from "../components/AuthImage";
import { boxRefs, unionBoxes, type UnionBox } from "../lib/qaShapes";
import { isTypingTarget } from "../lib/hotkeys";
import { ErrorText } from "../components/ErrorText";
import { ProjectNav } from "../components/ProjectNav";
import { useProject } from "../components/useProject";
import { api } from "../session";

const PAGE = 50;
type Pair = QAPair & { stale?: boolean };
const FILTERS = ["family", "split", "reviewed", "image_id", "file", "template_id", "stale"] as const;

export default function QA() {
  const pid = Number(useParams().pid);
  const { project } = useProject(pid);
  const navigate = useNavigate();
  // Filters and page live in the URL: a reload or a shared link shows the same pairs.
  const [params, setParams] = useSearchParams();
  const f = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) ?? ""])) as Record<(typeof FILTERS)[number], string>;
  const offset = Number(params.get("offset") ?? 0);
  const setF = (patch: Record<string, string | number>) => {
    const p = new URLSearchParams(window.location.search);
    for (const [k, v] of Object.entries(patch)) { if (v === "" || v === 0) p.delete(k); else p.set(k, String(v)); }
    if (!("offset" in patch)) p.delete("offset");
    setParams(p, { replace: true });
  };
  const [items, setItems] = useState<Pair[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState("");
  const [missing, setMissing] = useState(false);
  const [focus, setFocus] = useState(0);
  const [sizes, setSizes] = useState<Map<number, { w: number; h: number }>>(new Map());
  const key = params.toString();

  const load = useCallback(() => {
    setError(null);
    const q: Record<string, string | number | boolean> = { offset, limit: PAGE };
    for (const k of FILTERS) if (f[k] !== "") q[k] = f[k];
    api.request<{ items: Pair[]; total: number }>("GET", `/api/projects/${pid}/qa`, { query: q }).then(
      (p) => { setItems(p.items); setTotal(p.total); setMissing(false); },
      (e) => { if (e instanceof ApiError && e.status === 404 && /Not Found/i.test(e.detail)) setMissing(true); else setError(e); },
    );
  }, [pid, key]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => { load(); setFocus(0); }, [load]);

  // The overlay needs each image's size: one GET per distinct image on the page.
  useEffect(() => {
    for (const id of new Set(items.map((q) => q.image_id)))
      if (!sizes.has(id)) api.getImage(id).then((img) => setSizes((m) => new Map(m).set(id, { w: img.width, h: img.height })), () => {});
  }, [items]); // eslint-disable-line react-hooks/exhaustive-deps

  const groups = useMemo(() => {
    const g = new Map<number, Pair[]>();
    for (const q of items) g.set(q.image_id, [...(g.get(q.image_id) ?? []), q]);
    return [...g.entries()];
  }, [items]);
  const run = async (f2: () => Promise<unknown>, msg = "") => {
    setError(null);
    try { await f2(); if (msg) setNote(msg); load(); } catch (e) { setError(e); }
  };
  const markShown = () => run(() => api.request("POST", `/api/projects/${pid}/qa/review`, { json: { ids: items.map((q) => q.id), reviewed: true } }),
    `Marked ${items.length} shown pairs reviewed.`);
  const regenerate = () => run(async () => {
    const r = await api.request<{ images: number; deleted: number; inserted: number }>("POST", `/api/projects/${pid}/qa/regenerate-stale`);
    setNote(`Regenerated the pairs of ${r.images} image(s): ${r.deleted} replaced by ${r.inserted}; edited pairs kept.`);
  });

  // Keys: J / ↓ next pair, K / ↑ previous, R reviewed on/off, E open the image in the editor.
  const keys = useRef<(e: KeyboardEvent) => void>(() => {});
  keys.current = (e: KeyboardEvent) => {
    if (isTypingTarget(e.target) || e.ctrlKey || e.metaKey || e.altKey || !items.length) return;
    const q = items[Math.min(focus, items.length - 1)];
    const k = e.key.toLowerCase();
    if (k === "j" || e.key === "ArrowDown") setFocus((i) => Math.min(items.length - 1, i + 1));
    else if (k === "k" || e.key === "ArrowUp") setFocus((i) => Math.max(0, i - 1));
    else if (k === "r") void run(() => api.patchQA(q.id, { reviewed: !q.reviewed }));
    else if (k === "e") navigate(`/projects/${pid}/images/${q.image_id}`);
    else return;
    e.preventDefault();
  };
  useEffect(() => {
    const h = (e: KeyboardEvent) => keys.current(e);
    window.addEventListener("keydown", h);
    return () => window.removeEventListener("keydown", h);
  }, []);
  useEffect(() => {
    document.querySelector(`[data-qa-id="${items[focus]?.id}"]`)?.scrollIntoView({ block: "nearest" });
  }, [focus, items]);
  const focusedId = items[focus]?.id;

  return (
    <div className="pad">
      {project && <ProjectNav project={project} />}
      <h1>QA review</h1>
      {missing ? <p className="warn">This server has no QA API yet (GET /api/projects/{pid}/qa answered 404).</p> : (
        <>
          <Generate pid={pid} onDone={load} />
          <form className="row filters" role="search" onSubmit={(e) => e.preventDefault()}>
            <label>Family
              <select value={f.family} onChange={(e) => setF({ family: e.target.value })}>
                <option value="">any</option>
                {QA_FAMILIES.map((x) => <option key={x}>{x}</option>)}
              </select>
            </label>
            <label>Split <input className="short" value={f.split} onChange={(e) => setF({ split: e.target.value })} placeholder="any" /></label>
            <label>File name <input value={f.file} onChange={(e) => setF({ file: e.target.value })} placeholder="substring" /></label>
            <label>Image id <input className="short" value={f.image_id} onChange={(e) => setF({ image_id: e.target.value.replace(/\D/g, "") })} placeholder="any" /></label>
            <label>Template <input className="short" value={f.template_id} onChange={(e) => setF({ template_id: e.target.value })} placeholder="any" /></label>
            <label>Reviewed
              <select value={f.reviewed} onChange={(e) => setF({ reviewed: e.target.value })}>
                <option value="">any</option><option value="true">reviewed</option><option value="false">not reviewed</option>
              </select>
            </label>
            <label>Stale
              <select value={f.stale} onChange={(e) => setF({ stale: e.target.value })}>
                <option value="">any</option><option value="true">stale only</option><option value="false">current only</option>
              </select>
            </label>
          </form>
          <div className="row">
            <button onClick={markShown} disabled={!items.length}>Mark all {items.length} shown as reviewed</button>
            <button onClick={regenerate}>Regenerate stale pairs</button>
            <span className="muted small">Keys: J / ↓ next pair · K / ↑ previous · R reviewed on/off · E open the image in the editor</span>
          </div>
          {note && <p role="status" className="ok">{note}</p>}
          <ErrorText error={error} />
          <p className="muted" aria-live="polite">{total === null ? "Loading…" : total === 0 ? "0 pairs here yet: generate them below from the boxes (split the images first, so each pair knows its split)." : `${total} pairs`}{total ? `, showing ${offset + 1}–${offset + items.length} in ${groups.length} images` : ""}</p>
          <ul className="qa-list">
            {groups.map(([iid, pairs]) => (
              <ImageGroup key={iid} pid={pid} pairs={pairs} size={sizes.get(iid)} labels={project?.labels ?? []} focusedId={focusedId}
                onFocus={(id) => setFocus(items.findIndex((q) => q.id === id))} onChange={load} />
            ))}
          </ul>
          <div className="row">
            <button disabled={offset === 0} onClick={() => setF({ offset: Math.max(0, offset - PAGE) })}>Previous page</button>
            <button disabled={total === null || offset + PAGE >= total} onClick={() => setF({ offset: offset + PAGE })}>Next page</button>
          </div>
        </>
      )}
    </div>
  );
}

/** One image with every box its pairs refer to (label colours, numbered tags), then its pairs. */
function ImageGroup({ pid, pairs, size, labels, focusedId, onFocus, onChange }: {
  pid: number; pairs: Pair[]; size?: { w: number; h: number }; labels: Label[]; focusedId?: number;
  onFocus: (id: number) => void; onChange: () => void;
}) {
  const union = unionBoxes(pairs);
  const color = (name: string) => labels.find((l) => l.name === name)?.color ?? (name === "region" ? "#00e5ff" : "#ffcc00");
  const first = pairs[0];
  return (
    <li className={`card qa-group${pairs.some((p) => p.id === focusedId) ? " focused" : ""}`} data-image-id={first.image_id}>
      <div>
        <div className="qa-image">
          <AuthImage imageId={first.image_id} thumbnail={false} alt={first.file_name} />
          {size && <TaggedBoxes w={size.w} h={size.h} boxes={union} color={color} />}
        </div>
        <p className="muted small">{first.file_name} · split {first.split ?? "—"} · <Link to={`/projects/${pid}/images/${first.image_id}`}>open in editor (E)</Link></p>
      </div>
      <ul className="qa-list">
        {pairs.map((q) => <QAItem key={q.id} q={q} refs={boxRefs(q.params, union)} focused={q.id === focusedId} onFocus={() => onFocus(q.id)} onChange={onChange} />)}
      </ul>
    </li>
  );
}

/** Numbered tags on a dark plate, sized to the image: legible at any scale and over any colour. */
function TaggedBoxes({ w, h, boxes, color }: { w: number; h: number; boxes: UnionBox[]; color: (l: string) => string }) {
  const fs = Math.max(w, h) / 22;
  return (
    <svg className="overlay" viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="xMidYMid meet" aria-label="Boxes the pairs refer to">
      {boxes.map((b) => {
        const c = color(b.label), tag = `#${b.n}`, tw = fs * (0.62 * tag.length + 0.5);
        const ty = b.y1 - fs * 1.2 >= 0 ? b.y1 - fs * 1.2 : b.y1; // above the box when there is room
        return (
          <g key={b.n} data-tag={b.n}>
            <rect x={b.x1} y={b.y1} width={b.x2 - b.x1} height={b.y2 - b.y1} fill="none" stroke={c} strokeWidth={2}
              vectorEffect="non-scaling-stroke" strokeDasharray={b.label === "region" ? "6 4" : undefined} />
            <rect x={b.x1} y={ty} width={tw} height={fs * 1.2} fill="#000c" stroke={c} strokeWidth={1} vectorEffect="non-scaling-stroke" />
            <text x={b.x1 + fs * 0.25} y={ty + fs * 0.95} fontSize={fs} fill="#fff" fontWeight="bold">{tag}</text>
          </g>
        );
      })}
    </svg>
  );
}

function QAItem({ q, refs, focused, onFocus, onChange }: { q: Pair; refs: string[]; focused: boolean; onFocus: () => void; onChange: () => void }) {
  const [question, setQuestion] = useState(q.question);
  const [answer, setAnswer] = useState(q.answer);
  useEffect(() => { setQuestion(q.question); setAnswer(q.answer); }, [q.question, q.answer]);
  const [reviewed, setReviewed] = useState(q.reviewed);
  useEffect(() => setReviewed(q.reviewed), [q.reviewed]);
  const [error, setError] = useState<unknown>(null);
  const dirty = question !== q.question || answer !== q.answer;
  const run = async (f: () => Promise<unknown>) => {
    setError(null);
    try { await f(); onChange(); } catch (e) { setError(e); }
  };
  return (
    <li className={`qa-item${focused ? " focused" : ""}`} data-qa-id={q.id} onClick={onFocus}>
      <div className="qa-text">
        <p className="muted small">{q.family} / {q.template_id} · {q.source}{q.reviewed ? " · reviewed" : ""}
          {q.stale && <> · <span className="stale" data-testid="stale" title="The image's boxes changed since this pair was generated">stale</span></>}
          {refs.length > 0 && <> · {refs.join(", ")}</>}</p>
        <p className="qa-display"><b>Q:</b> <span data-testid="display-question">{q.display_question}</span><br /><b>A:</b> <span data-testid="display-answer">{q.display_answer}</span></p>
        <label>Question ({"{boxN}"} = box N of this pair) <textarea rows={2} value={question} onChange={(e) => setQuestion(e.target.value)} /></label>
        <label>Answer <textarea rows={2} value={answer} onChange={(e) => setAnswer(e.target.value)} /></label>
        <div className="row">
          <button disabled={!dirty} onClick={() => run(() => api.patchQA(q.id, { question, answer }))}>Save</button>
          <label className="inline">
            <input type="checkbox" checked={reviewed} onChange={(e) => {
              const on = e.target.checked;
              setReviewed(on); // at once; the reload after the save confirms it (or the error shows)
              run(() => api.patchQA(q.id, { reviewed: on }).catch((err) => { setReviewed(!on); throw err; }));
            }} /> Reviewed (R)
          </label>
          <button className="danger" onClick={() => run(() => api.deleteQA(q.id))}>Delete</button>
        </div>
        <ErrorText error={error} />
      </div>
    </li>
  );
}

function Generate({ pid, onDone }: { pid: number; onDone: () => void }) {
  const [families, setFamilies] = useState<string[]>(QA_FAMILIES);
  const [cap, setCap] = useState(20);
  const [seed, setSeed] = useState(0);
  const [neg, setNeg] = useState(0.5);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState("");
  const [error, setError] = useState<unknown>(null);
  async function go() {
    setBusy(true); setError(null); setResult("");
    try {
      const r = await api.generateQA(pid, { families, per_image_cap: cap || null, seed, negatives_ratio: neg });
      const per = Object.entries(r.counts).map(([f, c]) => `${f} ${Object.values(c).reduce((a, b) => a + b, 0)}`).join(", ");
      setResult(`Generated ${r.total} pairs over ${r.images} images${per ? ` (${per})` : ""}. Reviewed and edited pairs were kept.`);
      onDone();
    } catch (e) { setError(e); } finally { setBusy(false); }
  }
  const toggle = (f: string, on: boolean) => setFamilies(on ? [...families, f] : families.filter((x) => x !== f));
  return (
    <details className="card">
      <summary>Generate question/answer pairs</summary>
      <fieldset className="row">
        <legend>Families</legend>
        {QA_FAMILIES.map((f) => (
          <label key={f} className="inline"><input type="checkbox" checked={families.includes(f)} onChange={(e) => toggle(f, e.target.checked)} /> {f}</label>
        ))}
      </fieldset>
      <div className="row">
        <label>Per-image cap (0 = none) <input type="number" min={0} className="short" value={cap} onChange={(e) => setCap(Number(e.target.value))} /></label>
        <label>Seed <input type="number" className="short" value={seed} onChange={(e) => setSeed(Number(e.target.value))} /></label>
        <label>Negatives ratio <input type="number" step={0.1} min={0} className="short" value={neg} onChange={(e) => setNeg(Number(e.target.value))} /></label>
        <button onClick={go} disabled={busy || families.length === 0}>{busy ? "Generating…" : "Generate"}</button>
      </div>
      {result && <p role="status" className="ok">{result}</p>}
      <ErrorText error={error} />
    </details>
  );
}
