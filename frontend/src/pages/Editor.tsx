// The box editor: an SVG canvas of our own over the image (geometry in lib/geometry.ts, keys in
// lib/hotkeys.ts, undo in lib/history.ts). Every change is saved at once through the API, one
// request at a time in order, each naming the box version it read; a 409 opens the conflict dialog.
import { useCallback, useEffect, useMemo, useRef, useState, type PointerEvent as RPointerEvent } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { ApiError, statusPath, type BoxOut, type ImageDetail, type ImageStatus, type Label } from "../api/client";
import { useImageUrl } from "../components/AuthImage";
import { errText } from "../components/ErrorText";
import { filtersFromParams, filtersToParams } from "../components/filters";
import { ProjectNav } from "../components/ProjectNav";
import { QueueBar } from "../components/Loop";
import { useProject } from "../components/useProject";
import {
  HANDLES, fitView, fromCorners, handlePoint, hitBox, hitHandle, isValid, moveRect, nudge, rectToScreen, resizeRect,
  sameRect, toImage, zoomAt, pan as panView, type Handle, type Pt, type View,
} from "../lib/geometry";
import { History, forward, inverse, type BoxData, type Change, type Op } from "../lib/history";
import { isTypingTarget, keyToAction, SHORTCUTS } from "../lib/hotkeys";
import { RunUse } from "../components/RunUse";
import { api } from "../session";

interface EBox extends BoxData { id: number; version: number }
interface Conflict { id: number; op: "update" | "delete"; mine: BoxData | null; theirs: BoxOut }
type Drag =
  | { kind: "draw"; start: Pt; cur: Pt }
  | { kind: "move"; id: number; start: Pt; orig: EBox; moved: boolean }
  | { kind: "resize"; id: number; handle: Handle; orig: EBox }
  | { kind: "pan"; last: Pt };

const data = (b: BoxData): BoxData => ({ label_id: b.label_id, x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2 });
let tempIds = -1; // boxes not yet saved have negative ids until the server gives them one

export default function Editor() {
  const pid = Number(useParams().pid);
  const iid = Number(useParams().iid);
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const { project } = useProject(pid);
  const labels = useMemo(() => project?.labels ?? [], [project]);

  const [image, setImage] = useState<ImageDetail | null>(null);
  const [boxes, setBoxesState] = useState<EBox[]>([]);
  const boxesRef = useRef<EBox[]>([]);
  const setBoxes = (f: (b: EBox[]) => EBox[]) => {
    boxesRef.current = f(boxesRef.current);
    setBoxesState(boxesRef.current);
  };
  const [selected, setSelected] = useState<number | null>(null);
  const [curLabel, setCurLabel] = useState<number | null>(null);
  const [mode, setMode] = useState<"draw" | "select">("draw");
  const [view, setView] = useState<View>({ scale: 1, tx: 0, ty: 0 });
  const [vp, setVp] = useState({ w: 800, h: 600 });
  const [drag, setDrag] = useState<Drag | null>(null);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [saving, setSaving] = useState(0);
  const [message, setMessage] = useState("");
  const [help, setHelp] = useState(false);
  const [total, setTotal] = useState<number | null>(null); // images under the current filter
  // The last status change, kept across images (accepting moves on): Ctrl+Z right after it reverts it.
  const statusUndo = useRef<{ iid: number; from: ImageStatus; to: ImageStatus; i: string | null } | null>(null);
  const lastWasStatus = useRef(false);
  const [, bump] = useState(0); // re-render when the history changes (undo/redo buttons)
  const history = useRef(new History());
  const queue = useRef<Promise<unknown>>(Promise.resolve());
  const idMap = useRef(new Map<number, number>());
  // The server's version of each box, written only from server answers: the queued writes read it
  // when they run, so a write queued behind another one sends the version the first one produced.
  const versions = useRef(new Map<number, number>());
  const spaceDown = useRef(false);
  const attrs = useRef(new Map<number, Record<string, unknown>>()); // box id -> attributes, as the server has them
  const wrapRef = useRef<HTMLDivElement>(null);
  const svgRef = useRef<SVGSVGElement>(null);
  const url = useImageUrl(iid, false);
  const W = image?.width ?? 1, H = image?.height ?? 1;

  // ---------------------------------------------------------------- loading
  useEffect(() => {
    let live = true;
    setImage(null);
    setSelected(null);
    setConflict(null);
    setMessage("");
    history.current.clear();
    api.getImage(iid).then((img) => {
      if (!live) return;
      setImage(img);
      for (const b of img.boxes) { versions.current.set(b.id, b.version); attrs.current.set(b.id, b.attributes); }
      setBoxes(() => img.boxes.map((b) => ({ id: b.id, version: b.version, ...data(b) })));
    }, (e) => live && setMessage(errText(e)));
    return () => { live = false; };
  }, [iid]);
  const filterKey = filtersToParams(filtersFromParams(params)).toString();
  useEffect(() => {
    let live = true;
    api.listImages(pid, { ...filtersFromParams(params), limit: 1 }).then((p) => live && setTotal(p.total ?? null), () => {});
    return () => { live = false; };
  }, [pid, filterKey]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {
    if (curLabel === null && labels.length) setCurLabel(labels[0].id);
  }, [labels, curLabel]);
  useEffect(() => {
    const el = wrapRef.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setVp({ w: el.clientWidth, h: el.clientHeight }));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const fit = useCallback(() => image && setView(fitView(image.width, image.height, vp.w, vp.h)), [image, vp]);
  useEffect(() => { fit(); }, [image?.id, vp.w, vp.h]); // eslint-disable-line react-hooks/exhaustive-deps

  // ---------------------------------------------------------------- saving
  const realId = (id: number) => { while (idMap.current.has(id)) id = idMap.current.get(id)!; return id; };
  const enqueue = (task: () => Promise<void>) => {
    setSaving((n) => n + 1);
    queue.current = queue.current.then(task).catch((e) => setMessage(errText(e))).finally(() => setSaving((n) => n - 1));
  };
  const onWriteError = (e: unknown, id: number, op: Conflict["op"], mine: BoxData | null) => {
    if (e instanceof ApiError && e.status === 409 && (e.body as { current?: BoxOut })?.current) {
      setConflict({ id, op, mine, theirs: (e.body as { current: BoxOut }).current });
      setMessage(e.detail);
    } else if (e instanceof ApiError && e.status === 404) {
      setBoxes((bs) => bs.filter((b) => b.id !== id));
      setMessage(e.detail);
    } else throw e;
  };

  /** Apply a change locally at once and save it in order; `record` puts it on the undo stack. */
  function apply(ch: Change, record?: Op | "auto") {
    if (record === "auto") lastWasStatus.current = false;
    if (ch.kind === "create") {
      const tmp = tempIds--;
      history.current.remap(ch.oldId, tmp);
      if (record === "auto") history.current.push({ kind: "create", id: tmp, after: ch.data });
      setBoxes((bs) => [...bs, { id: tmp, version: 0, ...ch.data }]);
      setSelected(tmp);
      enqueue(async () => {
        const b = await api.createBox(iid, ch.data);
        idMap.current.set(tmp, b.id);
        versions.current.set(b.id, b.version);
        history.current.remap(tmp, b.id);
        setBoxes((bs) => bs.map((x) => (x.id === tmp ? { ...x, id: b.id, version: b.version } : x)));
        setSelected((s) => (s === tmp ? b.id : s));
      });
    } else if (ch.kind === "update") {
      const before = boxesRef.current.find((b) => b.id === ch.id);
      if (!before) return;
      if (record === "auto") history.current.push({ kind: "update", id: ch.id, before: data(before), after: ch.data });
      setBoxes((bs) => bs.map((b) => (b.id === ch.id ? { ...b, ...ch.data } : b)));
      enqueue(async () => {
        const id = realId(ch.id);
        const version = versions.current.get(id);
        if (version === undefined) return; // its creation failed
        try {
          const b = await api.patchBox(id, { version, ...ch.data });
          versions.current.set(id, b.version);
          setBoxes((bs) => bs.map((x) => (x.id === id ? { ...x, version: b.version } : x)));
        } catch (e) {
          onWriteError(e, id, "update", ch.data);
        }
      });
    } else {
      const before = boxesRef.current.find((b) => b.id === ch.id);
      if (!before) return;
      if (record === "auto") history.current.push({ kind: "delete", id: ch.id, before: data(before) });
      setBoxes((bs) => bs.filter((b) => b.id !== ch.id));
      setSelected((s) => (s === ch.id ? null : s));
      enqueue(async () => {
        const id = realId(ch.id);
        try {
          const version = versions.current.get(id);
          if (version !== undefined) await api.deleteBox(id, version);
        } catch (e) {
          onWriteError(e, id, "delete", null);
        }
      });
    }
    bump((n) => n + 1);
  }

  const saveAttributes = (id: number, a: Record<string, unknown>) => enqueue(async () => {
    const rid = realId(id);
    const version = versions.current.get(rid);
    if (version === undefined) return;
    try {
      const b = await api.patchBox(rid, { version, attributes: a as Record<string, string | number | boolean | null> });
      versions.current.set(rid, b.version);
      attrs.current.set(rid, b.attributes);
      setBoxes((bs) => bs.map((x) => (x.id === rid ? { ...x, version: b.version } : x)));
      setMessage("Attributes saved.");
    } catch (e) {
      onWriteError(e, rid, "update", null);
    }
  });

  const resolveConflict = (keepMine: boolean) => {
    if (!conflict) return;
    const { id, op, mine, theirs } = conflict;
    setConflict(null);
    setMessage("");
    if (keepMine && op === "update" && mine) {
      versions.current.set(id, theirs.version);
      apply({ kind: "update", id, data: mine });
    } else if (keepMine && op === "delete") {
      enqueue(async () => {
        try { await api.deleteBox(id, theirs.version); } catch (e) { onWriteError(e, id, "delete", null); }
      });
    } else {
      // Take theirs: their box replaces ours (and comes back if we had deleted it).
      versions.current.set(id, theirs.version);
      const t: EBox = { id, version: theirs.version, ...data(theirs) };
      setBoxes((bs) => (bs.some((b) => b.id === id) ? bs.map((b) => (b.id === id ? t : b)) : [...bs, t]));
    }
  };

  const undoStatus = async () => {
    const u = statusUndo.current;
    if (!u) return;
    statusUndo.current = null;
    lastWasStatus.current = false;
    try {
      await queue.current;
      let img = await api.getImage(u.iid);
      for (const s of statusPath(img.status, u.from)) img = await api.setStatus(u.iid, s);
      setMessage(`Undone: ${img.file_name} is ${u.from} again.`);
      if (u.iid === iid) setImage(img);
      else {
        const p = filtersToParams(filtersFromParams(params));
        if (u.i !== null) p.set("i", u.i);
        navigate(`/projects/${pid}/images/${u.iid}?${p}`);
      }
    } catch (e) {
      setMessage(errText(e));
    }
  };
  const undo = () => {
    if (statusUndo.current && (lastWasStatus.current || !history.current.canUndo)) return void undoStatus();
    const op = history.current.undo();
    if (op) apply(inverse(op));
  };
  const redo = () => { const op = history.current.redo(); if (op) apply(forward(op)); };

  // ---------------------------------------------------------------- actions
  const sel = boxes.find((b) => b.id === selected) ?? null;
  const relabel = (labelId: number) => {
    setCurLabel(labelId);
    if (sel && sel.label_id !== labelId) apply({ kind: "update", id: sel.id, data: { ...data(sel), label_id: labelId } }, "auto");
  };
  const go = async (dir: 1 | -1) => {
    await queue.current; // nothing unsaved is left behind
    const i = Number(params.get("i") ?? 0);
    const filters = filtersFromParams(params);
    const page = dir > 0
      ? await api.listImages(pid, { ...filters, after_id: iid, limit: 1, with_total: false })
      : i > 0 ? await api.listImages(pid, { ...filters, offset: i - 1, limit: 1, with_total: false }) : null;
    const next = page?.items[0];
    if (!next || next.id === iid) return setMessage(dir > 0 ? "This is the last image." : "This is the first image.");
    const p = filtersToParams(filters);
    p.set("i", String(Math.max(0, i + dir)));
    navigate(`/projects/${pid}/images/${next.id}?${p}`);
  };
  const review = async (target: ImageStatus) => {
    if (!image) return;
    try {
      await queue.current;
      let img = image;
      for (const s of statusPath(image.status, target)) img = await api.setStatus(iid, s);
      setImage(img);
      if (image.status !== target) {
        statusUndo.current = { iid, from: image.status, to: target, i: params.get("i") };
        lastWasStatus.current = true;
        setMessage(`${image.file_name}: ${target}. Ctrl+Z undoes it.`);
      }
      await go(1);
    } catch (e) {
      setMessage(errText(e));
    }
  };

  // ---------------------------------------------------------------- keyboard
  const keyHandler = useRef<(e: KeyboardEvent) => void>(() => {});
  keyHandler.current = (e: KeyboardEvent) => {
    if (e.key === " " && !isTypingTarget(e.target)) spaceDown.current = e.type === "keydown";
    if (e.type !== "keydown" || conflict || isTypingTarget(e.target)) return;
    if (help) {
      if (e.key === "Escape" || e.key === "?") { e.preventDefault(); setHelp(false); }
      return;
    }
    const tag = (e.target as HTMLElement | null)?.tagName;
    if ((tag === "BUTTON" || tag === "A") && (e.key === "Enter" || e.key === " ")) return; // the focused control's own key
    const a = keyToAction(e, labels, sel !== null);
    if (!a) return;
    e.preventDefault();
    switch (a.type) {
      case "label": return relabel(a.labelId);
      case "newBox": return setMode("draw");
      case "selectMode": return setMode("select");
      case "delete": return sel && apply({ kind: "delete", id: sel.id }, "auto");
      case "nudge":
        if (sel) apply({ kind: "update", id: sel.id, data: { ...data(sel), ...nudge(sel, a.dx, a.dy, a.shift, W, H) } }, "auto");
        return;
      case "prev": return void go(-1);
      case "next": return void go(1);
      case "accept": return void review("accepted");
      case "reject": return void review("rejected");
      case "undo": return undo();
      case "redo": return redo();
      case "deselect": return setSelected(null);
      case "help": return setHelp(true);
    }
  };
  useEffect(() => {
    const h = (e: KeyboardEvent) => keyHandler.current(e);
    window.addEventListener("keydown", h);
    window.addEventListener("keyup", h);
    return () => { window.removeEventListener("keydown", h); window.removeEventListener("keyup", h); };
  }, []);

  // ---------------------------------------------------------------- mouse
  useEffect(() => {
    const svg = svgRef.current;
    if (!svg) return;
    // A non-passive listener: the page must not scroll while the wheel zooms the image.
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const r = svg.getBoundingClientRect();
      setView((v) => zoomAt(v, Math.exp(-e.deltaY * 0.0015), { x: e.clientX - r.left, y: e.clientY - r.top }));
    };
    svg.addEventListener("wheel", onWheel, { passive: false });
    return () => svg.removeEventListener("wheel", onWheel);
  }, [image?.id]);

  const screenPt = (e: RPointerEvent) => {
    const r = svgRef.current!.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  };
  const onDown = (e: RPointerEvent<SVGSVGElement>) => {
    if (!image || conflict) return;
    svgRef.current!.setPointerCapture(e.pointerId);
    const s = screenPt(e);
    const p = toImage(view, s);
    if (e.button === 1 || e.button === 2 || spaceDown.current) return setDrag({ kind: "pan", last: s });
    if (sel) {
      const hd = hitHandle(rectToScreen(view, sel), s);
      if (hd) return setDrag({ kind: "resize", id: sel.id, handle: hd, orig: sel });
    }
    const hit = hitBox(boxes, p);
    // In draw mode too, a drag that starts inside a box moves it (Shift+drag draws inside one).
    if (hit && !(mode === "draw" && e.shiftKey)) {
      setSelected(hit.id);
      setCurLabel(hit.label_id);
      return setDrag({ kind: "move", id: hit.id, start: p, orig: hit, moved: false });
    }
    if (mode === "draw") {
      setSelected(null);
      return setDrag({ kind: "draw", start: p, cur: p });
    }
    setSelected(null);
    setDrag({ kind: "pan", last: s });
  };
  const onMove = (e: RPointerEvent<SVGSVGElement>) => {
    if (!drag) return;
    const s = screenPt(e);
    const p = toImage(view, s);
    if (drag.kind === "pan") {
      setView((v) => panView(v, s.x - drag.last.x, s.y - drag.last.y));
      setDrag({ ...drag, last: s });
    } else if (drag.kind === "draw") setDrag({ ...drag, cur: p });
    else if (drag.kind === "move") {
      const r = moveRect(drag.orig, p.x - drag.start.x, p.y - drag.start.y, W, H);
      setBoxes((bs) => bs.map((b) => (b.id === drag.id ? { ...b, ...r } : b)));
      if (!drag.moved) setDrag({ ...drag, moved: true });
    } else {
      const r = resizeRect(drag.orig, drag.handle, p, W, H);
      setBoxes((bs) => bs.map((b) => (b.id === drag.id ? { ...b, ...r } : b)));
    }
  };
  const onUp = () => {
    const d = drag;
    setDrag(null);
    if (!d || d.kind === "pan") return;
    if (d.kind === "draw") {
      const r = fromCorners(d.start, d.cur, W, H);
      if (!isValid(r, 2)) return; // a click, not a drag
      if (curLabel === null) return setMessage("Add a label in the project settings first.");
      apply({ kind: "create", oldId: 0, data: { label_id: curLabel, ...r } }, "auto");
      return;
    }
    const now = boxesRef.current.find((b) => b.id === d.id);
    if (!now || sameRect(now, d.orig)) return;
    // The drag moved it locally; record and save from the original so undo returns there.
    setBoxes((bs) => bs.map((b) => (b.id === d.id ? { ...b, ...data(d.orig) } : b)));
    apply({ kind: "update", id: d.id, data: data(now) }, "auto");
  };

  // ---------------------------------------------------------------- render
  const labelOf = (id: number) => labels.find((l) => l.id === id);
  const drawing = drag?.kind === "draw" ? fromCorners(drag.start, drag.cur, W, H) : null;
  const theirs = conflict?.theirs ?? null;
  return (
    <div className="pad editor">
      {project && <ProjectNav project={project} />}
      {params.get("queue") && <QueueBar pid={pid} iid={iid} runId={Number(params.get("queue"))} />}
      <div className="toolbar" role="toolbar" aria-label="Editor">
        <Link to={`/projects/${pid}?${filtersToParams(filtersFromParams(params))}`}>← Grid</Link>
        <button onClick={() => go(-1)} title="Previous image (← or A)">Previous</button>
        <button onClick={() => go(1)} title="Next image (→ or D)">Next</button>
        <span className="sep" />
        <button aria-pressed={mode === "draw"} onClick={() => setMode("draw")} title="Draw boxes (N)">Draw (N)</button>
        <button aria-pressed={mode === "select"} onClick={() => setMode("select")} title="Select and pan (V)">Select (V)</button>
        <button onClick={() => setView((v) => zoomAt(v, 1.25, { x: vp.w / 2, y: vp.h / 2 }))} aria-label="Zoom in">+</button>
        <button onClick={() => setView((v) => zoomAt(v, 0.8, { x: vp.w / 2, y: vp.h / 2 }))} aria-label="Zoom out">−</button>
        <button onClick={fit}>Fit</button>
        <button onClick={undo} disabled={!history.current.canUndo} title="Ctrl+Z">Undo</button>
        <button onClick={redo} disabled={!history.current.canRedo} title="Ctrl+Shift+Z">Redo</button>
        <span className="sep" />
        <button className="accept" onClick={() => review("accepted")} title="Enter">Accept (Enter)</button>
        <button className="reject" onClick={() => review("rejected")} title="X">Reject (X)</button>
        <span className="muted" data-testid="image-counter">
          {total !== null && params.get("i") !== null ? `image ${Number(params.get("i")) + 1} of ${total}` : total !== null ? `${total} images` : ""}
        </span>
        <button onClick={() => setHelp(true)} title="Keyboard shortcuts (?)" aria-label="Keyboard shortcuts">?</button>
        <span className="spacer" />
        <span aria-live="polite" data-testid="save-state" className="muted">{saving > 0 ? "saving…" : "all changes saved"}</span>
      </div>
      <div className="editor-body">
        <div ref={wrapRef} className="canvas-wrap">
          <svg ref={svgRef} width={vp.w} height={vp.h} className={`canvas mode-${mode}`} data-testid="canvas"
            onPointerDown={onDown} onPointerMove={onMove} onPointerUp={onUp} onContextMenu={(e) => e.preventDefault()}
            role="img" aria-label={image ? `${image.file_name}, ${boxes.length} boxes` : "loading image"}>
            <g transform={`translate(${view.tx} ${view.ty}) scale(${view.scale})`}>
              {url && <image href={url} width={W} height={H} />}
              {boxes.map((b) => (
                <rect key={b.id} data-box-id={b.id} x={b.x1} y={b.y1} width={b.x2 - b.x1} height={b.y2 - b.y1}
                  className={b.id === selected ? "box selected" : "box"} stroke={labelOf(b.label_id)?.color ?? "#ff0"}
                  fill={b.id === selected ? `${labelOf(b.label_id)?.color ?? "#ff0"}22` : "none"} vectorEffect="non-scaling-stroke" />
              ))}
              {theirs && <rect x={theirs.x1} y={theirs.y1} width={theirs.x2 - theirs.x1} height={theirs.y2 - theirs.y1}
                className="box theirs" vectorEffect="non-scaling-stroke" />}
              {drawing && <rect x={drawing.x1} y={drawing.y1} width={drawing.x2 - drawing.x1} height={drawing.y2 - drawing.y1}
                className="box drawing" stroke={curLabel !== null ? labelOf(curLabel)?.color : "#fff"} vectorEffect="non-scaling-stroke" />}
            </g>
            {boxes.map((b) => {
              const r = rectToScreen(view, b);
              return <text key={b.id} x={r.x1 + 3} y={r.y1 - 4} className="box-label" fill={labelOf(b.label_id)?.color}>{labelOf(b.label_id)?.name}</text>;
            })}
            {sel && HANDLES.map((hd) => {
              const q = handlePoint(rectToScreen(view, sel), hd);
              return <rect key={hd} className={`handle h-${hd}`} x={q.x - 4} y={q.y - 4} width={8} height={8} />;
            })}
          </svg>
        </div>
        <aside className="side">
          <p className="muted">{image?.file_name} · {image?.width}×{image?.height} · status <b data-testid="image-status">{image?.status}</b> · split {image?.split ?? "—"}</p>
          <h3>Label for new boxes</h3>
          <div className="labels" role="group" aria-label="Labels">
            {labels.map((l, i) => (
              <button key={l.id} aria-pressed={curLabel === l.id} onClick={() => relabel(l.id)} style={{ borderColor: l.color }}>
                <span className="swatch" style={{ background: l.color }} /> {l.name} <kbd>{l.hotkey ?? (i < 9 ? i + 1 : "")}</kbd>
              </button>
            ))}
          </div>
          <h3>Boxes ({boxes.length})</h3>
          <ul className="box-list">
            {boxes.map((b) => (
              <li key={b.id}>
                <button aria-pressed={b.id === selected} onClick={() => { setSelected(b.id); setCurLabel(b.label_id); }}>
                  <span className="swatch" style={{ background: labelOf(b.label_id)?.color }} /> {labelOf(b.label_id)?.name}
                  <span className="muted"> {Math.round(b.x1)},{Math.round(b.y1)} – {Math.round(b.x2)},{Math.round(b.y2)}</span>
                </button>
              </li>
            ))}
          </ul>
          {sel && (
            <div className="card">
              <label>Label of the selected box
                <select value={sel.label_id} onChange={(e) => relabel(Number(e.target.value))}>
                  {labels.map((l) => <option key={l.id} value={l.id}>{l.name}</option>)}
                </select>
              </label>
              <button className="danger" onClick={() => apply({ kind: "delete", id: sel.id }, "auto")}>Delete box (Del / ⌫)</button>
            </div>
          )}
          {sel && sel.id > 0 && (
            <AttributesPanel key={`box-${sel.id}`} title="Box attributes" value={attrs.current.get(sel.id) ?? {}}
              onSave={(a) => saveAttributes(sel.id, a)} />
          )}
          {image && (
            <AttributesPanel key={`img-${image.id}`} title="Image meta" value={image.meta as Record<string, unknown>}
              onSave={async (m) => { try { setImage(await api.patchImage(iid, { meta: m })); } catch (e) { setMessage(errText(e)); } }} />
          )}
          <RunUse pid={pid} reload={`${image?.id}-${image?.status}`} />
          {message && <p role="status" className="warn">{message}</p>}
          <button className="linklike" onClick={() => setHelp(true)}>All keyboard shortcuts (?)</button>
        </aside>
      </div>
      {help && <ShortcutsOverlay onClose={() => setHelp(false)} />}
      {conflict && <ConflictDialog c={conflict} labels={labels} onChoose={resolveConflict} />}
    </div>
  );
}

function ShortcutsOverlay({ onClose }: { onClose: () => void }) {
  const ref = useRef<HTMLButtonElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <div className="overlay-bg" onClick={onClose}>
      <div role="dialog" aria-modal="true" aria-labelledby="keys-h" className="overlay-card" onClick={(e) => e.stopPropagation()}>
        <h2 id="keys-h">Keyboard shortcuts</h2>
        <table><tbody>
          {SHORTCUTS.map(([k, what]) => <tr key={k}><td><kbd>{k}</kbd></td><td>{what}</td></tr>)}
        </tbody></table>
        <button ref={ref} onClick={onClose}>Close (Esc)</button>
      </div>
    </div>
  );
}

/** Flat key → value pairs (a box's attributes, an image's meta), edited as text; saved whole. */
function AttributesPanel({ title, value, onSave }: {
  title: string; value: Record<string, unknown>; onSave: (v: Record<string, unknown>) => void;
}) {
  const [rows, setRows] = useState<[string, string][]>(() => Object.entries(value ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
  const parse = (t: string): unknown => { try { const v = JSON.parse(t); return typeof v === "object" && v !== null ? t : v; } catch { return t; } };
  const set = (i: number, j: 0 | 1, t: string) => setRows((rs) => rs.map((r, k) => (k === i ? (j === 0 ? [t, r[1]] : [r[0], t]) : r)));
  return (
    <div className="card attr-panel" role="group" aria-label={title}>
      <h3>{title}</h3>
      <table><tbody>
        {rows.map(([k, v], i) => (
          <tr key={i}>
            <td><input aria-label={`${title} key ${i + 1}`} value={k} onChange={(e) => set(i, 0, e.target.value)} /></td>
            <td><input aria-label={`${title} value ${i + 1}`} value={v} onChange={(e) => set(i, 1, e.target.value)} /></td>
            <td><button aria-label={`Remove ${k}`} onClick={() => setRows((rs) => rs.filter((_, x) => x !== i))}>×</button></td>
          </tr>
        ))}
      </tbody></table>
      <div className="row">
        <button onClick={() => setRows((rs) => [...rs, ["", ""]])}>Add</button>
        <button className="primary" onClick={() => onSave(Object.fromEntries(rows.filter(([k]) => k.trim()).map(([k, v]) => [k.trim(), parse(v)])))}>
          Save {title.toLowerCase()}</button>
      </div>
    </div>
  );
}

function ConflictDialog({ c, labels, onChoose }: { c: Conflict; labels: Label[]; onChoose: (keepMine: boolean) => void }) {
  const name = (id: number) => labels.find((l) => l.id === id)?.name ?? `label ${id}`;
  const fmt = (b: BoxData) => `${name(b.label_id)} at (${b.x1}, ${b.y1}) – (${b.x2}, ${b.y2})`;
  const ref = useRef<HTMLButtonElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <div className="modal-back">
      <div role="alertdialog" aria-modal="true" aria-labelledby="conflict-h" className="card dialog conflict">
        <h2 id="conflict-h">Someone else changed this box</h2>
        <p>Their version ({c.theirs.version}, dashed on the image): <b data-testid="theirs">{fmt(c.theirs)}</b></p>
        <p>Your change: <b data-testid="mine">{c.mine ? fmt(c.mine) : "delete the box"}</b></p>
        <div className="row">
          <button ref={ref} className="primary" onClick={() => onChoose(true)}>Keep mine</button>
          <button onClick={() => onChoose(false)}>Take theirs</button>
        </div>
      </div>
    </div>
  );
}
