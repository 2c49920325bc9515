import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { useVirtualizer } from "@tanstack/react-virtual";
import { STATUSES, type ImageFilters, type ImageItem, type ImageStatus, type ProjectDetail } from "../api/client";
import { AuthImage } from "../components/AuthImage";
import { BoxOverlay } from "../components/BoxOverlay";
import { ErrorText } from "../components/ErrorText";
import { ImportDialog } from "../components/ImportDialog";
import { ExportForm } from "../components/ExportForm";
import { DemoBanner } from "../components/DemoBanner";
import { ProjectNav } from "../components/ProjectNav";
import { useProject } from "../components/useProject";
import { api } from "../session";
import { filtersFromParams, filtersToParams } from "../components/filters";
import { STATUS_COLORS } from "../lib/status";
import { RunUse } from "../components/RunUse";

const CELL = 168; // px: a 160 px thumbnail and its gap
const PAGE = 120; // items per API page (a few screens of rows)

export default function Dataset() {
  const pid = Number(useParams().pid);
  const { project, error, reload } = useProject(pid);
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => filtersFromParams(params), [params]);
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [importing, setImporting] = useState(false);
  const [gridKey, setGridKey] = useState(0); // bump to refetch the grid after an edit

  const setFilter = (patch: Partial<ImageFilters>) => {
    // From the URL as it is now, not as this render saw it: the name box's debounced update may
    // land after another filter changed (react-router's functional form also sees a render's copy).
    const now = filtersFromParams(new URLSearchParams(window.location.search));
    setParams(filtersToParams({ ...now, ...patch }), { replace: true });
    setSelected(new Set());
  };
  const refresh = () => {
    reload();
    setGridKey((k) => k + 1);
  };

  if (!project) return <div className="pad"><ErrorText error={error} />{!error && "Loading…"}</div>;
  return (
    <div className="pad dataset">
      <ProjectNav project={project} />
      <DemoBanner project={project} />
      <div className="toolbar">
        <StatusCounts project={project} current={filters.status ?? ""} onPick={(s) => setFilter({ status: s })} />
        <span className="spacer" />
        <Link to={`/projects/${pid}/review`}>Review queue</Link>
        <button onClick={() => setImporting(true)}>Import…</button>
        <ExportForm pid={pid} />
      </div>
      <Filters project={project} filters={filters} onChange={setFilter} />
      <BulkBar pid={pid} selected={selected} clear={() => setSelected(new Set())} done={refresh} />
      <RunUse pid={pid} reload={gridKey} />
      <Grid key={`${gridKey}|${params.toString()}`} project={project} filters={filters} selected={selected} setSelected={setSelected} />
      {importing && <ImportDialog pid={pid} onClose={() => setImporting(false)} onDone={refresh} />}
    </div>
  );
}

function StatusCounts({ project, current, onPick }: { project: ProjectDetail; current: string; onPick: (s: ImageStatus | "") => void }) {
  return (
    <div className="counts" role="group" aria-label="Images per status">
      <button aria-pressed={current === ""} onClick={() => onPick("")}>all <b>{project.image_count}</b></button>
      {STATUSES.map((s) => (
        <button key={s} aria-pressed={current === s} className={`st-${s}`} onClick={() => onPick(s)}>
          {s.replace("_", " ")} <b>{project.counts[s] ?? 0}</b>
        </button>
      ))}
    </div>
  );
}

function Filters({ project, filters, onChange }: { project: ProjectDetail; filters: ImageFilters; onChange: (p: Partial<ImageFilters>) => void }) {
  const [q, setQ] = useState(filters.q ?? "");
  // Typing in the name box filters after a short pause, not on every key.
  useEffect(() => {
    const t = setTimeout(() => q !== (filters.q ?? "") && onChange({ q }), 300);
    return () => clearTimeout(t);
  }, [q]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <form className="row filters" role="search" onSubmit={(e) => { e.preventDefault(); onChange({ q }); }}>
      <label>Status
        <select value={filters.status ?? ""} onChange={(e) => onChange({ status: e.target.value as ImageStatus | "" })}>
          <option value="">any</option>
          {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
        </select>
      </label>
      <label>Label
        <select value={filters.label ?? ""} onChange={(e) => onChange({ label: e.target.value })}>
          <option value="">any</option>
          {project.labels.map((l) => <option key={l.id} value={String(l.id)}>{l.name}</option>)}
        </select>
      </label>
      <label>Split <input className="short" value={filters.split ?? ""} onChange={(e) => onChange({ split: e.target.value })} placeholder="any" /></label>
      <label>Boxes
        <select value={filters.has_boxes === "" || filters.has_boxes === undefined ? "" : String(filters.has_boxes)}
          onChange={(e) => onChange({ has_boxes: e.target.value === "" ? "" : e.target.value === "true" })}>
          <option value="">any</option><option value="true">with boxes</option><option value="false">without boxes</option>
        </select>
      </label>
      <MetaFilter filters={filters} onChange={onChange} />
      <label>File name <input type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="substring" /></label>
    </form>
  );
}

/** Images whose meta has key = value (track, race_id, …); applied when both are given. */
function MetaFilter({ filters, onChange }: { filters: ImageFilters; onChange: (p: Partial<ImageFilters>) => void }) {
  const [k, setK] = useState(filters.meta_key || "race_id");
  const [v, setV] = useState(filters.meta_value ?? "");
  useEffect(() => {
    const t = setTimeout(() => {
      const key = v.trim() ? k.trim() : "", value = v.trim();
      if (key !== (filters.meta_key ?? "") || value !== (filters.meta_value ?? "")) onChange({ meta_key: key, meta_value: value });
    }, 300);
    return () => clearTimeout(t);
  }, [k, v]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <>
      <label>Meta key <input style={{ width: "7em" }} list="meta-keys" value={k} onChange={(e) => setK(e.target.value)} /></label>
      <datalist id="meta-keys">{["race_id", "track", "view", "seed"].map((x) => <option key={x} value={x} />)}</datalist>
      <label>equals <input className="short" value={v} onChange={(e) => setV(e.target.value)} placeholder="any" aria-label="Meta value" /></label>
    </>
  );
}

function BulkBar({ pid, selected, clear, done }: { pid: number; selected: Set<number>; clear: () => void; done: () => void }) {
  const [status, setStatus] = useState<ImageStatus>("accepted");
  const [split, setSplit] = useState("train");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  if (selected.size === 0) return null;
  const ids = [...selected];
  const run = async (f: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
      clear();
      done();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="bulk card" role="region" aria-label="Selected images">
      <strong>{selected.size} selected</strong>
      <label>Status
        <select value={status} onChange={(e) => setStatus(e.target.value as ImageStatus)}>
          {STATUSES.filter((s) => s !== "unlabeled").map((s) => <option key={s}>{s}</option>)}
        </select>
      </label>
      <button disabled={busy} onClick={() => run(() => api.bulkPatch(pid, { ids, status }))}>Set status</button>
      <label>Split <input className="short" value={split} onChange={(e) => setSplit(e.target.value)} /></label>
      <button disabled={busy} onClick={() => run(() => api.bulkPatch(pid, { ids, split: split.trim() || null }))}>Set split</button>
      <button onClick={clear}>Clear selection</button>
      <ErrorText error={error} />
    </div>
  );
}

function Grid({ project, filters, selected, setSelected }: {
  project: ProjectDetail; filters: ImageFilters; selected: Set<number>; setSelected: (s: Set<number>) => void;
}) {
  const navigate = useNavigate();
  const parentRef = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(800);
  const [total, setTotal] = useState<number | null>(null);
  const [pages, setPages] = useState<Map<number, ImageItem[]>>(new Map());
  const [error, setError] = useState<unknown>(null);
  const inflight = useRef(new Set<number>());
  const lastClicked = useRef<number | null>(null);

  useEffect(() => {
    const el = parentRef.current!;
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const loadPage = useCallback((n: number) => {
    if (inflight.current.has(n)) return;
    inflight.current.add(n);
    api.listImages(project.id, { ...filters, offset: n * PAGE, limit: PAGE, with_total: n === 0 }).then(
      (page) => {
        if (n === 0) setTotal(page.total ?? 0);
        setPages((m) => new Map(m).set(n, page.items));
      },
      (e) => {
        inflight.current.delete(n);
        setError(e);
      },
    );
  }, [project.id, filters]);

  useEffect(() => loadPage(0), [loadPage]);

  const cols = Math.max(1, Math.floor(width / CELL));
  const rowCount = total === null ? 0 : Math.ceil(total / cols);
  const virt = useVirtualizer({ count: rowCount, getScrollElement: () => parentRef.current, estimateSize: () => CELL, overscan: 2 });
  const rows = virt.getVirtualItems();

  // Fetch the pages the visible rows need (and only those).
  useEffect(() => {
    if (!rows.length || total === null) return;
    const first = rows[0].index * cols, last = Math.min(total, (rows[rows.length - 1].index + 1) * cols) - 1;
    for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) if (!pages.has(p)) loadPage(p);
  }, [rows, cols, total, pages, loadPage]);

  const itemAt = (i: number) => pages.get(Math.floor(i / PAGE))?.[i % PAGE];
  const toggle = (i: number, id: number, range: boolean) => {
    const next = new Set(selected);
    if (range && lastClicked.current !== null) {
      // Shift-click selects the loaded images between the last click and this one.
      const [a, b] = [Math.min(lastClicked.current, i), Math.max(lastClicked.current, i)];
      for (let j = a; j <= b; j++) { const it = itemAt(j); if (it) next.add(it.id); }
    } else if (next.has(id)) next.delete(id);
    else next.add(id);
    lastClicked.current = i;
    setSelected(next);
  };
  const editorLink = (i: number, id: number) =>
    `/projects/${project.id}/images/${id}?${new URLSearchParams({ ...Object.fromEntries(filtersToParams(filters)), i: String(i) })}`;

  return (
    <>
      <ErrorText error={error} />
      <p className="muted" aria-live="polite">{total === null ? "Loading…" : total === 0 ? "0 images here: use Import… above (images, a zip, or COCO / YOLO / VOC / SuperTuxKart annotations), or clear the filters." : `${total} images`}</p>
      <div ref={parentRef} className="grid-scroll" data-testid="grid">
        <div style={{ height: virt.getTotalSize(), position: "relative" }}>
          {rows.map((r) => (
            <div key={r.key} className="grid-row" style={{ transform: `translateY(${r.start}px)`, height: CELL }}>
              {Array.from({ length: cols }, (_, c) => {
                const i = r.index * cols + c;
                if (total === null || i >= total) return null;
                const it = itemAt(i);
                if (!it) return <div key={c} className="cell loading" aria-hidden />;
                const sel = selected.has(it.id);
                return (
                  <div key={c} className={`cell st-${it.status}${sel ? " selected" : ""}`} data-image-id={it.id}>
                    <Link to={editorLink(i, it.id)} className="thumb" aria-label={`Open ${it.file_name} (${it.status}, ${it.box_count} boxes)`}
                      onClick={(e) => { if (e.shiftKey || e.ctrlKey || e.metaKey) { e.preventDefault(); toggle(i, it.id, e.shiftKey); } }}>
                      <AuthImage imageId={it.id} thumbnail alt="" />
                      <BoxOverlay width={it.width} height={it.height} boxes={it.boxes} labels={project.labels} />
                    </Link>
                    <label className="cell-foot">
                      <input type="checkbox" checked={sel} aria-label={`Select ${it.file_name}`}
                        onChange={(e) => toggle(i, it.id, (e.nativeEvent as MouseEvent).shiftKey)} />
                      <i className="dot" style={{ background: STATUS_COLORS[it.status] }} title={it.status} aria-hidden />
                      <span className="fname" title={it.file_name}>{it.file_name}</span>
                      {it.split && <i className="split-tag" title={`split ${it.split}`}>{it.split}</i>}
                    </label>
                  </div>
                );
              })}
            </div>
          ))}
        </div>
      </div>
      {total !== null && total > 0 && (
        <button className="linklike" onClick={() => navigate(editorLink(0, itemAt(0)!.id))} disabled={!itemAt(0)}>Review from the first image</button>
      )}
    </>
  );
}
