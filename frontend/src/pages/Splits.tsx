// The split tool: by image, by group (any meta key, e.g. race_id) or by track; ratios and a seed;
// a preview of the counts per split and the leak check of the proposal before anything is written.
import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { ErrorText } from "../components/ErrorText";
import { ProjectNav } from "../components/ProjectNav";
import { useProject } from "../components/useProject";
import { DEFAULT_SPLIT_FORM, splitBody, type SplitForm, type SplitMode } from "../lib/splits";
import { api } from "../session";

interface Leak { group: string; splits: Record<string, number> }
interface SplitOut { counts: Record<string, number>; groups: Record<string, number>; ungrouped: number; leaks?: Leak[] | null; check_key?: string | null }
interface Check { ok: boolean; key: string; leaks: Leak[] }

export default function Splits() {
  const pid = Number(useParams().pid);
  const { project, error: perr } = useProject(pid);
  const [f, setF] = useState<SplitForm>(DEFAULT_SPLIT_FORM);
  const [preview, setPreview] = useState<{ body: string; out: SplitOut } | null>(null);
  const [applied, setApplied] = useState<SplitOut | null>(null);
  const [current, setCurrent] = useState<Check | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof SplitForm>(k: K, v: SplitForm[K]) => { setF((x) => ({ ...x, [k]: v })); setPreview(null); };
  const checkKey = f.checkKey.trim() || "race_id";
  const loadCheck = () => api.request<Check>("GET", `/api/projects/${pid}/splits/check`, { query: { key: checkKey } }).then(setCurrent, setError);
  useEffect(() => { loadCheck(); }, [pid, checkKey]); // eslint-disable-line react-hooks/exhaustive-deps

  const go = async (dry: boolean) => {
    setError(null);
    setBusy(true);
    try {
      const body = splitBody(f, dry);
      const out = await api.request<SplitOut>("POST", `/api/projects/${pid}/splits`, { json: body });
      if (dry) setPreview({ body: JSON.stringify(splitBody(f, false)), out });
      else { setApplied(out); setPreview(null); await loadCheck(); }
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const mode = (m: SplitMode) => setF((x) => ({ ...x, mode: m, key: m === "track" ? "track" : m === "group" ? "race_id" : x.key }));
  const splitNames = preview ? Object.keys(preview.out.counts) : [];
  if (!project) return <div className="pad"><ErrorText error={perr} />{!perr && "Loading…"}</div>;
  return (
    <div className="pad">
      <ProjectNav project={project} />
      <h1>Splits</h1>
      <p className="muted">Assign every image to a split. Keep neighbouring frames of one race (or one track) together,
        or the held-out score measures memory, not skill: the leak check below shows any group in two splits.</p>
      <form className="card" onSubmit={(e) => { e.preventDefault(); go(true); }} aria-label="Split settings">
        <div className="row">
          <label>Split by
            <select value={f.mode} onChange={(e) => { mode(e.target.value as SplitMode); setPreview(null); }}>
              <option value="image">image (frames of one race may land in different splits)</option>
              <option value="group">group (a meta key, e.g. race_id)</option>
              <option value="track">track</option>
            </select>
          </label>
          {f.mode !== "image" && <label>Group key <input className="short" value={f.key} onChange={(e) => set("key", e.target.value)} /></label>}
          {!(f.mode === "track" && f.heldOut.trim()) && (
            <label>Ratios <input value={f.ratios} onChange={(e) => set("ratios", e.target.value)} placeholder="train=0.8, val=0.1, test=0.1" /></label>
          )}
          {f.mode === "track" && (
            <label>Held out (instead of ratios) <input value={f.heldOut} onChange={(e) => set("heldOut", e.target.value)} placeholder="test=lighthouse; val=hacienda" /></label>
          )}
          <label>Seed <input className="short" type="number" value={f.seed} onChange={(e) => set("seed", Number(e.target.value))} /></label>
          <label>Leak check by <input className="short" value={f.checkKey} onChange={(e) => set("checkKey", e.target.value)} /></label>
        </div>
        <div className="row">
          <button type="submit" disabled={busy}>Preview</button>
          <button type="button" className="primary" disabled={busy || !preview || preview.body !== JSON.stringify(splitBody(f, false))}
            onClick={() => go(false)} title="Preview first">Apply split</button>
        </div>
        <ErrorText error={error} />
      </form>
      {preview && (
        <section className="card" aria-label="Preview">
          <h2>Preview (nothing written yet)</h2>
          <table>
            <thead><tr><th>split</th>{splitNames.map((s) => <th key={s}>{s}</th>)}</tr></thead>
            <tbody>
              <tr><td>images</td>{splitNames.map((s) => <td key={s} data-testid={`preview-${s}`}>{preview.out.counts[s]}</td>)}</tr>
              <tr><td>groups</td>{splitNames.map((s) => <td key={s}>{preview.out.groups[s] ?? 0}</td>)}</tr>
            </tbody>
          </table>
          {preview.out.ungrouped > 0 && <p className="warn">{preview.out.ungrouped} images have no {f.key}: each is a group of its own.</p>}
          <LeakList leaks={preview.out.leaks ?? []} k={preview.out.check_key ?? checkKey} testid="preview-leaks" />
        </section>
      )}
      {applied && <p role="status" className="ok">Split applied: {Object.entries(applied.counts).map(([s, n]) => `${s} ${n}`).join(", ")}.
        {" "}<Link to={`/projects/${pid}`}>See the grid</Link></p>}
      <section className="card" aria-label="Current split">
        <h2>The project's split now</h2>
        {current ? <LeakList leaks={current.leaks} k={current.key} testid="current-leaks" /> : "Loading…"}
      </section>
    </div>
  );
}

function LeakList({ leaks, k, testid }: { leaks: Leak[]; k: string; testid: string }) {
  if (!leaks.length) return <p className="ok" data-testid={testid}>No leak: every {k} group is in one split.</p>;
  return (
    <div data-testid={testid}>
      <p className="error">Leak: {leaks.length} {k} group(s) have images in more than one split.</p>
      <ul>{leaks.slice(0, 20).map((l) => <li key={l.group}><b>{l.group}</b>: {Object.entries(l.splits).map(([s, n]) => `${s} ${n}`).join(", ")}</li>)}</ul>
      {leaks.length > 20 && <p className="muted">and {leaks.length - 20} more</p>}
    </div>
  );
}
