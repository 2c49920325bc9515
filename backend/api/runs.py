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
from sqlalchemy import exists, func, or_, select
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


def _stats(r: RunImageResult, phase: str) -> dict | None:
    if getattr(r, f"f1_{phase}") is None:
        return None
    return {"image_id": r.image_id, **{k: getattr(r, f"{k}_{phase}") for k in RESULT_STATS}}


@router.get("/runs/{run_id}/gallery")
def gallery(db: DB, user: CurrentUser, run_id: Id,
            sort: Literal["most_improved", "most_regressed", "image"] = "most_improved",
            label: str | None = None, error: Literal["missed", "false_box", "wrong_label"] | None = None,
            split: Annotated[str | None, Query(max_length=32)] = None,
            offset: int = Query(0, ge=0, le=INT32_MAX), limit: int = Query(50, ge=1, le=500)) -> dict:
    """Per held-out image: ground truth, before and after boxes (with scores), per-image stats
    (tp, fp, fn, wrong_label, f1) before / after and the change of f1. `error` keeps images that
    still have that error after fine-tuning (or in the only phase of an evaluate run). Sorted,
    filtered and paged in SQL over the run's result rows (only the page is loaded)."""
    run = run_for(db, user, run_id)
    R = RunImageResult
    conds = [R.run_id == run.id]
    if split is not None:
        conds.append(R.split == split)
    if error is not None:
        stat = ERROR_STAT[error]
        conds.append(func.coalesce(getattr(R, f"{stat}_after"), getattr(R, f"{stat}_before")) > 0)
    if label is not None:
        from worker.codecs import norm_label  # torch-free

        snap = db.get(Snapshot, run.snapshot_id) if run.snapshot_id else None
        gt = [n for n in ((snap.content or {}).get("labels", []) if snap else []) if norm_label(n) == norm_label(label)]
        has = [exists().where(Prediction.run_id == run.id, Prediction.phase.in_(["before", "after"]),
                              Prediction.image_id == R.image_id, Prediction.label == label)]
        if gt:
            has.append(exists().where(SnapshotBox.snapshot_id == run.snapshot_id, SnapshotBox.image_id == R.image_id,
                                      SnapshotBox.label.in_(gt)))
        conds.append(or_(*has))
    total = db.scalar(select(func.count()).select_from(R).where(*conds))
    if sort == "image":
        order = [R.image_id]
    else:
        order = [R.change.is_(None), R.change.desc() if sort == "most_improved" else R.change.asc(), R.image_id]
    page = db.scalars(select(R).where(*conds).order_by(*order).offset(offset).limit(limit)).all()
    ids = [r.image_id for r in page]
    boxes: dict[tuple[int, str], list] = {}
    raws: dict[tuple[int, str], str | None] = {}
    ims: dict[int, SnapshotImage] = {}
    gts: dict[int, list] = {}
    if page:
        for p in db.scalars(select(Prediction).where(
                Prediction.run_id == run.id, Prediction.task == "detect", Prediction.label.is_not(None),
                Prediction.image_id.in_(ids)).order_by(Prediction.id)):
            boxes.setdefault((p.image_id, p.phase), []).append(
                {"label": p.label, "box": [p.x1, p.y1, p.x2, p.y2], "score": p.score})
        ims = {im.image_id: im for im in db.scalars(select(SnapshotImage).where(
            SnapshotImage.snapshot_id == run.snapshot_id, SnapshotImage.image_id.in_(ids)))}
        for b in db.scalars(select(SnapshotBox).where(SnapshotBox.snapshot_id == run.snapshot_id,
                                                      SnapshotBox.image_id.in_(ids)).order_by(SnapshotBox.box_id)):
            gts.setdefault(b.image_id, []).append({"label": b.label, "box": [b.x1, b.y1, b.x2, b.y2]})
        for iid, phase, raw in db.execute(select(Prediction.image_id, Prediction.phase, Prediction.raw_text).where(
                Prediction.run_id == run.id, Prediction.task == "detect",
                Prediction.image_id.in_(ids)).order_by(Prediction.id)):
            raws.setdefault((iid, phase), raw)  # the model's raw output: one text per image and phase
    out = []
    for r in page:
        im = ims.get(r.image_id)
        b, a = _stats(r, "before"), _stats(r, "after")
        out.append({"image_id": r.image_id, "file_name": im.file_name if im else None,
                    "width": im.width if im else None, "height": im.height if im else None, "split": r.split,
                    "ground_truth": gts.get(r.image_id, []),
                    "before": boxes.get((r.image_id, "before"), []) if b else None,
                    "after": boxes.get((r.image_id, "after"), []) if a else None,
                    "stats_before": b, "stats_after": a, "change": r.change,
                    "raw_before": raws.get((r.image_id, "before")), "raw_after": raws.get((r.image_id, "after"))})
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
