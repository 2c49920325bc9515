import { useCallback, useEffect, useState } from "react";
import { useParams } from "react-router";
import { ApiError, QA_FAMILIES, type Label, type QAPair } from "../api/client";
import { AuthImage } from "../components/AuthImage";
import { BoxOverlay } from "../components/BoxOverlay";
import { paramShapes } from "../lib/qaShapes";
import { ErrorText } from "../components/ErrorText";
import { ProjectNav } from "../components/ProjectNav";
import { useProject } from "../components/useProject";
import { api } from "../session";

const PAGE = 20;
export default function QA() {
  const pid = Number(useParams().pid);
  const { project } = useProject(pid);
  const [family, setFamily] = useState("");
  const [split, setSplit] = useState("");
  const [reviewed, setReviewed] = useState("");
  const [offset, setOffset] = useState(0);
  const [items, setItems] = useState<QAPair[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [missing, setMissing] = useState(false);
  const [sizes, setSizes] = useState<Map<number, { w: number; h: number }>>(new Map());

  const load = useCallback(() => {
    setError(null);
    api.listQA(pid, { family, split, reviewed: reviewed === "" ? "" : reviewed === "true", offset, limit: PAGE }).then(
      (p) => { setItems(p.items); setTotal(p.total); setMissing(false); },
      (e) => { if (e instanceof ApiError && e.status === 404 && /Not Found/i.test(e.detail)) setMissing(true); else setError(e); },
    );
  }, [pid, family, split, reviewed, offset]);
  useEffect(() => { load(); }, [load]);

  // The overlay needs each image's size: one GET per distinct image on the page.
  useEffect(() => {
    for (const id of new Set(items.map((q) => q.image_id)))
      if (!sizes.has(id)) api.getImage(id).then((img) => setSizes((m) => new Map(m).set(id, { w: img.width, h: img.height })), () => {});
  }, [items]); // eslint-disable-line react-hooks/exhaustive-deps

  return (
    <div className="pad">
      {project && <ProjectNav project={project} />}
      <h1>QA review</h1>
      {missing ? <p className="warn">This server has no QA API yet (GET /api/projects/{pid}/qa answered 404).</p> : (
        <>
          <Generate pid={pid} onDone={load} />
          <form className="row filters" role="search" onSubmit={(e) => e.preventDefault()}>
            <label>Family
              <select value={family} onChange={(e) => { setFamily(e.target.value); setOffset(0); }}>
                <option value="">any</option>
                {QA_FAMILIES.map((f) => <option key={f}>{f}</option>)}
              </select>
            </label>
            <label>Split <input className="short" value={split} onChange={(e) => { setSplit(e.target.value); setOffset(0); }} placeholder="any" /></label>
            <label>Reviewed
              <select value={reviewed} onChange={(e) => { setReviewed(e.target.value); setOffset(0); }}>
                <option value="">any</option><option value="true">reviewed</option><option value="false">not reviewed</option>
              </select>
            </label>
          </form>
          <ErrorText error={error} />
          <p className="muted" aria-live="polite">{total === null ? "Loading…" : total === 0 ? "0 pairs here yet: generate them below from the boxes (split the images first, so each pair knows its split)." : `${total} pairs`}{total ? `, showing ${offset + 1}–${offset + items.length}` : ""}</p>
          <ul className="qa-list">
            {items.map((q) => <QAItem key={q.id} q={q} size={sizes.get(q.image_id)} labels={project?.labels ?? []} onChange={load} />)}
          </ul>
          <div className="row">
            <button disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>Previous page</button>
            <button disabled={total === null || offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>Next page</button>
          </div>
        </>
      )}
    </div>
  );
}

function QAItem({ q, size, labels, onChange }: { q: QAPair; size?: { w: number; h: number }; labels: Label[]; onChange: () => void }) {
  const [question, setQuestion] = useState(q.question);
  const [answer, setAnswer] = useState(q.answer);
  const [reviewed, setReviewed] = useState(q.reviewed);
  useEffect(() => setReviewed(q.reviewed), [q.reviewed]);
  const [error, setError] = useState<unknown>(null);
  const dirty = question !== q.question || answer !== q.answer;
  const run = async (f: () => Promise<unknown>) => {
    setError(null);
    try { await f(); onChange(); } catch (e) { setError(e); }
  };
  return (
    <li className="card qa-item" data-qa-id={q.id}>
      <div className="qa-image">
        <AuthImage imageId={q.image_id} thumbnail={false} alt={q.file_name} />
        {size && <BoxOverlay width={size.w} height={size.h} boxes={paramShapes(q.params)} labels={labels} />}
      </div>
      <div className="qa-text">
        <p className="muted">{q.file_name} · {q.family} / {q.template_id} · split {q.split ?? "—"} · {q.source}{q.reviewed ? " · reviewed" : ""}</p>
        <p className="qa-display"><b>Q:</b> <span data-testid="display-question">{q.display_question}</span><br /><b>A:</b> <span data-testid="display-answer">{q.display_answer}</span></p>
        <label>Question ({"{boxN}"} = box N) <textarea rows={2} value={question} onChange={(e) => setQuestion(e.target.value)} /></label>
        <label>Answer <textarea rows={2} value={answer} onChange={(e) => setAnswer(e.target.value)} /></label>
        <div className="row">
          <button disabled={!dirty} onClick={() => run(() => api.patchQA(q.id, { question, answer }))}>Save</button>
          <label className="inline">
            <input type="checkbox" checked={reviewed} onChange={(e) => {
              const on = e.target.checked;
              setReviewed(on); // at once; the reload after the save confirms it (or the error shows)
              run(() => api.patchQA(q.id, { reviewed: on }).catch((err) => { setReviewed(!on); throw err; }));
            }} /> Reviewed
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
