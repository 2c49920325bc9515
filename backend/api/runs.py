"""Runs: launch (train / evaluate / predict), list, read (polling or server-sent events), cancel,
the adapter zip and its merge, predictions, the before / after gallery, and accepting predicted
boxes into the images (model-assisted labeling). Launching, cancelling, merging and accepting need
the annotator role; reading needs membership (non-members get 404)."""
from __future__ import annotations

import asyncio
import json
import zipfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy import func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from backend.api.disposition import content_disposition
from backend.api.deps import Id, DB, CurrentUser, SettingsDep, Store, get_project, project_row
from backend.errors import Conflict, InvalidInput
from backend.models import (
    FINISHED,
    Box,
    BoxSource,
    Image,
    ImageStatus,
    Label,
    Prediction,
    Role,
    Run,
    RunKind,
    RunStatus,
    RunImageResult,
    Snapshot,
    SnapshotBox,
    SnapshotImage,
    User,
)
from backend.runs import RESULT_STATS, cancel_run, create_run, estimate_run, list_runs, reap_run, run_dir, run_view
from backend.schemas import INT32_MAX, AcceptIn, AcceptOut, RunCreate

router = APIRouter(tags=["runs"])


def run_for(db: Session, user: User, run_id: int, need: Role = Role.viewer) -> Run:
    return project_row(db, user, Run, run_id, "run", need)


@router.post("/projects/{project_id}/runs", status_code=status.HTTP_201_CREATED)
def launch(db: DB, user: CurrentUser, settings: SettingsDep, project_id: Id, body: RunCreate) -> dict:
    """Validate the config (422 naming the field; 409 for a leaking split), freeze the dataset
    snapshot, queue the run on the gpu queue."""
    get_project(db, user, project_id, Role.annotator)
    if body.dry_run:  # the launch form's live estimate: {"estimate_gb", "parts", "device_gb", "fits"}
        return estimate_run(db, project_id, body.kind, body.config)
    run = create_run(db, settings, project_id=project_id, user_id=user.id, kind=body.kind, config=body.config)
    return run_view(run)


@router.get("/projects/{project_id}/runs")
def runs_of_project(db: DB, user: CurrentUser, project_id: Id, offset: int = Query(0, ge=0, le=INT32_MAX),
                    limit: int = Query(100, ge=1, le=1000)) -> dict:
    get_project(db, user, project_id)
    return list_runs(db, project_id, limit, offset)


@router.get("/runs/{run_id}")
def run_detail(db: DB, user: CurrentUser, settings: SettingsDep, run_id: Id) -> dict:
    run = run_for(db, user, run_id)
    reap_run(db, settings, run)  # a run whose worker died is re-queued / failed, never 'running' forever
    view = run_view(run)
    if run.snapshot_id is not None:  # what it trains on: counts and the review-status filter, not the content
        snap = db.execute(select(Snapshot.n_images, Snapshot.n_boxes, Snapshot.n_qa,
                                 Snapshot.content["image_status"].as_string())
                          .where(Snapshot.id == run.snapshot_id)).one_or_none()
        if snap is not None:
            view["snapshot"] = {"n_images": snap[0], "n_boxes": snap[1], "n_qa": snap[2], "image_status": snap[3]}
    return view


def _view_now(sm, settings, run_id: int) -> dict:
    with sm() as s:
        run = s.get(Run, run_id)
        reap_run(s, settings, run)
        return run_view(run)


@router.get("/runs/{run_id}/events")
async def run_events(request: Request, db: DB, user: CurrentUser, settings: SettingsDep, run_id: Id):
    """Server-sent events: one `run` event (the GET /runs/{id} JSON) per change, then `end`."""
    await run_in_threadpool(run_for, db, user, run_id)
    sm = request.app.state.sessionmaker

    async def stream():
        last, idle = None, 0.0
        while True:
            view = await run_in_threadpool(_view_now, sm, settings, run_id)
            if view["version"] != last:
                last, idle = view["version"], 0.0
                yield f"event: run\nid: {view['version']}\ndata: {json.dumps(view)}\n\n"
            elif idle >= 15:
                idle = 0.0
                yield ": keep-alive\n\n"
            if view["status"] in {s.value for s in FINISHED}:
                yield "event: end\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.5)
            idle += 0.5

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/runs/{run_id}/cancel")
def cancel(db: DB, user: CurrentUser, run_id: Id) -> dict:
    """A queued run ends now; a running one stops at its next step. 409 if it already ended."""
    return run_view(cancel_run(db, run_for(db, user, run_id, Role.annotator)))


def _adapter_dir(run: Run, storage) -> Path:
    """The adapter folder on this machine (fetched once from the store when that is S3)."""
    d = storage.fetch_dir(run.adapter_path) if run.adapter_path else None
    if d is None or not d.is_dir():
        raise HTTPException(404, f"run {run.id} has no adapter (status {run.status.value})")
    return d


@router.get("/runs/{run_id}/adapter", response_class=FileResponse)
def adapter_zip(db: DB, user: CurrentUser, settings: SettingsDep, store: Store, run_id: Id) -> FileResponse:
    """The adapter folder as a zip (built once, next to the run's outputs)."""
    run = run_for(db, user, run_id)
    src = _adapter_dir(run, store.storage)
    out = run_dir(settings, run.id) / f"adapter-{Path(src).parent.name}.zip"
    newest = max(f.stat().st_mtime for f in src.rglob("*") if f.is_file())
    if not out.is_file() or out.stat().st_mtime < newest:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(src.rglob("*")):
                if f.is_file():
                    z.write(f, f.relative_to(src).as_posix())
        tmp.replace(out)
    return FileResponse(out, media_type="application/zip",
                        headers={"X-Adapter-Bytes": str(run.adapter_bytes or 0),
                                 "Content-Disposition": content_disposition(f"run-{run.id}-adapter.zip")})


@router.post("/runs/{run_id}/merge", status_code=status.HTTP_202_ACCEPTED)
def merge(db: DB, user: CurrentUser, settings: SettingsDep, store: Store, run_id: Id) -> dict:
    """Queue the merge of the adapter into the base (a gpu-queue task; the merged model is written
    to the run's folder and `merged` turns true on the run)."""
    from worker.celery_app import producer

    run = run_for(db, user, run_id, Role.annotator)
    if run.kind != RunKind.train or run.status != RunStatus.succeeded:
        raise Conflict(f"run {run.id} is not a succeeded train run; only its adapter can be merged")
    _adapter_dir(run, store.storage)
    producer(settings).send_task("studio.merge_adapter", args=[run.id], queue=settings.queue_prefix + "gpu")
    return {"run_id": run.id, "queued": True, "merged": bool(run.merged_path)}


def _pred_json(p: Prediction) -> dict:
    d = {"id": p.id, "image_id": p.image_id, "phase": p.phase, "task": p.task, "raw_text": p.raw_text}
    if p.task == "detect":
        d.update(label=p.label, box=[p.x1, p.y1, p.x2, p.y2] if p.label is not None else None, score=p.score)
    else:
        d.update(qtype=p.qtype, question=p.question, expected=p.expected, answer=p.answer, correct=p.correct)
    return d


@router.get("/runs/{run_id}/predictions")
def predictions(db: DB, user: CurrentUser, run_id: Id, image_id: Id | None = None,
                phase: Literal["before", "after", "predict"] | None = None,
                task: Literal["detect", "vqa"] | None = None,
                offset: int = Query(0, ge=0, le=INT32_MAX), limit: int = Query(1000, ge=1, le=10_000)) -> dict:
    run_for(db, user, run_id)
    q = select(Prediction).where(Prediction.run_id == run_id)
    if image_id is not None:
        q = q.where(Prediction.image_id == image_id)
    if phase is not None:
        q = q.where(Prediction.phase == phase)
    if task is not None:
        q = q.where(Prediction.task == task)
    rows = db.scalars(q.order_by(Prediction.id).offset(offset).limit(limit)).all()
    return {"items": [_pred_json(p) for p in rows]}


ERROR_STAT = {"missed": "fn", "false_box": "fp", "wrong_label": "wrong_label"}  # gallery filter -> per-image stat


GALLERY_PHASES = ("before", "after")
_TOTALS_MAX = 4096


def _total(request: Request, db: Session, run: Run, conds: list, key: tuple) -> int:
    """The number of result rows matching the filters. A finished run's results and predictions no
    longer change, so its count per filter is computed once per API process (keyed by the run's
    version too): with a label filter, counting probes every held-out image's boxes."""
    cache = getattr(request.app.state, "gallery_totals", None)
    if cache is None:
        cache = request.app.state.gallery_totals = {}
    key = (run.id, run.version, run.snapshot_id, *key)
    if key in cache:
        return cache[key]
    total = db.scalar(select(func.count()).select_from(RunImageResult).where(*conds))
    if run.status in FINISHED:
        if len(cache) >= _TOTALS_MAX:
            cache.clear()
        cache[key] = total
    return total


@router.get("/runs/{run_id}/gallery")
def gallery(request: Request, db: DB, user: CurrentUser, run_id: Id,
            sort: Literal["most_improved", "most_regressed", "image"] = "most_improved",
            label: str | None = None, error: Literal["missed", "false_box", "wrong_label"] | None = None,
            split: Annotated[str | None, Query(max_length=32)] = None,
            offset: int = Query(0, ge=0, le=INT32_MAX), limit: int = Query(50, ge=1, le=500)) -> dict:
    """Per held-out image: ground truth, before and after boxes (with scores), per-image stats
    (tp, fp, fn, wrong_label, f1) before / after and the change of f1. `error` keeps images that
    still have that error after fine-tuning (or in the only phase of an evaluate run). Sorted,
    filtered and paged in SQL over the run's result rows (only the page is loaded): each sort is an
    index scan of run_image_results (migration 0010) that stops at the page."""
    run = run_for(db, user, run_id)
    R, P, SB = RunImageResult, Prediction, SnapshotBox
    conds = [R.run_id == run.id]
    if split is not None:
        conds.append(R.split == split)
    if error is not None:
        stat = ERROR_STAT[error]
        conds.append(func.coalesce(getattr(R, f"{stat}_after"), getattr(R, f"{stat}_before")) > 0)
    has_label = None
    if label is not None:
        from worker.codecs import norm_label  # torch-free

        labels = db.scalar(select(Snapshot.content).where(Snapshot.id == run.snapshot_id)) if run.snapshot_id else None
        gt = [n for n in (labels or {}).get("labels", []) if norm_label(n) == norm_label(label)]
        has_label = [select(literal(1)).where(P.run_id == run.id, P.label == label, P.phase.in_(GALLERY_PHASES),
                                              P.image_id == R.image_id)]
        if gt:  # probed first: an index-only lookup
            has_label.insert(0, select(literal(1)).where(SB.snapshot_id == run.snapshot_id, SB.label.in_(gt),
                                                         SB.image_id == R.image_id))
    # OR of EXISTS: PostgreSQL hashes each side once (every image having the label), right to count
    # and for a rare label; a common one is cheaper probed per row along the ordered scan, which stops
    # at the page (one EXISTS over UNION ALL is never hashed).
    total = _total(request, db, run, conds + ([or_(*(q.exists() for q in has_label))] if has_label else []),
                   (split, error, label))
    if has_label:
        dense = 3 * (offset + limit) < total
        conds.append(union_all(*has_label).exists() if dense and len(has_label) > 1 else
                     or_(*(q.exists() for q in has_label)))
    if sort == "image":
        order = [R.image_id]
    else:  # NULLS LAST: the order of an index (a CASE on NULL first would sort every row)
        order = [R.change.desc().nulls_last() if sort == "most_improved" else R.change.asc().nulls_last(), R.image_id]
    # the page's ids first (an index-only scan however deep the offset), then their rows
    ids = list(db.scalars(select(R.image_id).where(*conds).order_by(*order).offset(offset).limit(limit)))
    stat_cols = [getattr(R, f"{k}_{ph}") for ph in GALLERY_PHASES for k in RESULT_STATS]
    rows = {r[0]: r for r in db.execute(select(R.image_id, R.split, R.change, *stat_cols)
                                        .where(R.run_id == run.id, R.image_id.in_(ids)))} if ids else {}
    page = [rows[i] for i in ids if i in rows]  # (a run deleted in between: no row)
    boxes: dict[tuple[int, str], list] = {}
    raws: dict[tuple[int, str], str | None] = {}
    ims: dict[int, tuple] = {}
    gts: dict[int, list] = {}
    if page:
        # rows, not ORM objects: 50 images carry about a thousand boxes
        for iid, phase, lab, x1, y1, x2, y2, score, raw in db.execute(
                select(P.image_id, P.phase, P.label, P.x1, P.y1, P.x2, P.y2, P.score, P.raw_text).where(
                    P.run_id == run.id, P.phase.in_(GALLERY_PHASES), P.task == "detect", P.image_id.in_(ids))
                .order_by(P.id)):
            raws.setdefault((iid, phase), raw)  # the model's raw output: one text per image and phase
            if lab is not None:
                boxes.setdefault((iid, phase), []).append({"label": lab, "box": [x1, y1, x2, y2], "score": score})
        ims = {iid: (fn, w, h) for iid, fn, w, h in db.execute(
            select(SnapshotImage.image_id, SnapshotImage.file_name, SnapshotImage.width, SnapshotImage.height)
            .where(SnapshotImage.snapshot_id == run.snapshot_id, SnapshotImage.image_id.in_(ids)))}
        for iid, lab, x1, y1, x2, y2 in db.execute(
                select(SB.image_id, SB.label, SB.x1, SB.y1, SB.x2, SB.y2)
                .where(SB.snapshot_id == run.snapshot_id, SB.image_id.in_(ids)).order_by(SB.image_id, SB.box_id)):
            gts.setdefault(iid, []).append({"label": lab, "box": [x1, y1, x2, y2]})
    n = len(RESULT_STATS)
    out = []
    for iid, sp, change, *vals in page:
        fn, w, h = ims.get(iid, (None, None, None))
        st = {}
        for k, ph in enumerate(GALLERY_PHASES):
            v = vals[k * n:(k + 1) * n]
            st[ph] = {"image_id": iid, **dict(zip(RESULT_STATS, v))} if v[RESULT_STATS.index("f1")] is not None else None
        b, a = st["before"], st["after"]
        out.append({"image_id": iid, "file_name": fn, "width": w, "height": h, "split": sp,
                    "ground_truth": gts.get(iid, []),
                    "before": boxes.get((iid, "before"), []) if b else None,
                    "after": boxes.get((iid, "after"), []) if a else None,
                    "stats_before": b, "stats_after": a, "change": change,
                    "raw_before": raws.get((iid, "before")), "raw_after": raws.get((iid, "after"))})
    return {"items": out, "total": total}


@router.post("/runs/{run_id}/accept", response_model=AcceptOut)
def accept(db: DB, user: CurrentUser, run_id: Id, body: AcceptIn) -> AcceptOut:
    """Copy the run's predicted boxes (score >= min_score) of these images into their boxes with
    source "model" and the score. Boxes already there (same label and coordinates) are not added
    twice; labels the project does not have are skipped; unlabeled images move to in_review."""
    run = run_for(db, user, run_id, Role.annotator)
    if run.status != RunStatus.succeeded:
        raise Conflict(f"run {run.id} is {run.status.value}; only a succeeded run's predictions can be accepted")
    phase = "predict" if run.kind == RunKind.predict else ("after" if "after" in (run.metrics or {}) else "before")
    ids = sorted(set(body.image_ids))
    images = {im.id: im for im in db.scalars(select(Image).where(Image.id.in_(ids), Image.project_id == run.project_id))}
    if len(images) != len(ids):
        raise InvalidInput("image_ids: some ids are not images of this run's project")
    labels = {lab.name: lab.id for lab in db.scalars(select(Label).where(Label.project_id == run.project_id))}
    existing = {(b.image_id, b.label_id, round(b.x1, 2), round(b.y1, 2), round(b.x2, 2), round(b.y2, 2))
                for b in db.scalars(select(Box).where(Box.image_id.in_(ids)))}
    created = skipped = 0
    for p in db.scalars(select(Prediction).where(Prediction.run_id == run.id, Prediction.phase == phase,
                                                 Prediction.task == "detect", Prediction.label.is_not(None),
                                                 Prediction.image_id.in_(ids)).order_by(Prediction.id)):
        lid = labels.get(p.label)
        key = (p.image_id, lid, round(p.x1, 2), round(p.y1, 2), round(p.x2, 2), round(p.y2, 2))
        if lid is None or (p.score or 0.0) < body.min_score or key in existing:
            skipped += 1
            continue
        existing.add(key)
        db.add(Box(image_id=p.image_id, label_id=lid, x1=p.x1, y1=p.y1, x2=p.x2, y2=p.y2, source=BoxSource.model,
                   score=p.score, attributes={"run_id": run.id}, updated_by_id=user.id))
        im = images[p.image_id]
        if im.status == ImageStatus.unlabeled:
            im.status = ImageStatus.in_review
        created += 1
    db.flush()
    return AcceptOut(created=created, skipped=skipped, images=len(ids))
