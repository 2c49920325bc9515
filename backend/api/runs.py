"""Runs: launch (train / evaluate / predict), list, read (polling or server-sent events), cancel,
the adapter zip and its merge, predictions, the before / after gallery, and accepting predicted
boxes into the images (model-assisted labeling). Launching, cancelling, merging and accepting need
the annotator role; reading needs membership (non-members get 404)."""
from __future__ import annotations

import asyncio
import json
import zipfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.deps import DB, CurrentUser, SettingsDep, get_project, project_row
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
    Snapshot,
    User,
)
from backend.runs import cancel_run, create_run, estimate_run, list_runs, reap_run, run_dir, run_view
from backend.schemas import AcceptIn, AcceptOut, RunCreate

router = APIRouter(tags=["runs"])


def run_for(db: Session, user: User, run_id: int, need: Role = Role.viewer) -> Run:
    return project_row(db, user, Run, run_id, "run", need)


@router.post("/projects/{project_id}/runs", status_code=status.HTTP_201_CREATED)
def launch(db: DB, user: CurrentUser, settings: SettingsDep, project_id: int, body: RunCreate) -> dict:
    """Validate the config (422 naming the field; 409 for a leaking split), freeze the dataset
    snapshot, queue the run on the gpu queue."""
    get_project(db, user, project_id, Role.annotator)
    if body.dry_run:  # the launch form's live estimate: {"estimate_gb", "parts", "device_gb", "fits"}
        return estimate_run(db, project_id, body.kind, body.config)
    run = create_run(db, settings, project_id=project_id, user_id=user.id, kind=body.kind, config=body.config)
    return run_view(run)


@router.get("/projects/{project_id}/runs")
def runs_of_project(db: DB, user: CurrentUser, project_id: int, offset: int = Query(0, ge=0),
                    limit: int = Query(100, ge=1, le=1000)) -> dict:
    get_project(db, user, project_id)
    return list_runs(db, project_id, limit, offset)


@router.get("/runs/{run_id}")
def run_detail(db: DB, user: CurrentUser, settings: SettingsDep, run_id: int) -> dict:
    run = run_for(db, user, run_id)
    reap_run(db, settings, run)  # a run whose worker died is re-queued / failed, never 'running' forever
    return run_view(run)


def _view_now(sm, settings, run_id: int) -> dict:
    with sm() as s:
        run = s.get(Run, run_id)
        reap_run(s, settings, run)
        return run_view(run)


@router.get("/runs/{run_id}/events")
async def run_events(request: Request, db: DB, user: CurrentUser, settings: SettingsDep, run_id: int):
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
def cancel(db: DB, user: CurrentUser, run_id: int) -> dict:
    """A queued run ends now; a running one stops at its next step. 409 if it already ended."""
    return run_view(cancel_run(db, run_for(db, user, run_id, Role.annotator)))


def _adapter_dir(run: Run) -> Path:
    if not run.adapter_path or not Path(run.adapter_path).is_dir():
        raise HTTPException(404, f"run {run.id} has no adapter (status {run.status.value})")
    return Path(run.adapter_path)


@router.get("/runs/{run_id}/adapter", response_class=FileResponse)
def adapter_zip(db: DB, user: CurrentUser, settings: SettingsDep, run_id: int) -> FileResponse:
    """The adapter folder as a zip (built once, next to the run's outputs)."""
    run = run_for(db, user, run_id)
    src = _adapter_dir(run)
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
    return FileResponse(out, media_type="application/zip", filename=f"run-{run.id}-adapter.zip",
                        headers={"X-Adapter-Bytes": str(run.adapter_bytes or 0)})


@router.post("/runs/{run_id}/merge", status_code=status.HTTP_202_ACCEPTED)
def merge(db: DB, user: CurrentUser, settings: SettingsDep, run_id: int) -> dict:
    """Queue the merge of the adapter into the base (a gpu-queue task; the merged model is written
    to the run's folder and `merged` turns true on the run)."""
    from worker.celery_app import producer

    run = run_for(db, user, run_id, Role.annotator)
    if run.kind != RunKind.train or run.status != RunStatus.succeeded:
        raise Conflict(f"run {run.id} is not a succeeded train run; only its adapter can be merged")
    _adapter_dir(run)
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
def predictions(db: DB, user: CurrentUser, run_id: int, image_id: int | None = None,
                phase: Literal["before", "after", "predict"] | None = None,
                task: Literal["detect", "vqa"] | None = None,
                offset: int = Query(0, ge=0), limit: int = Query(1000, ge=1, le=10_000)) -> dict:
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


@router.get("/runs/{run_id}/gallery")
def gallery(db: DB, user: CurrentUser, run_id: int,
            sort: Literal["most_improved", "most_regressed", "image"] = "most_improved",
            label: str | None = None, error: Literal["missed", "false_box", "wrong_label"] | None = None,
            offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500)) -> dict:
    """Per held-out image: ground truth, before and after boxes (with scores), per-image stats
    (tp, fp, fn, wrong_label, f1) before / after and the change of f1. `error` keeps images that
    still have that error after fine-tuning (or in the only phase of an evaluate run)."""
    run = run_for(db, user, run_id)
    per = (run.metrics or {}).get("per_image") or {}
    before = {r["image_id"]: r for r in per.get("before", [])}
    after = {r["image_id"]: r for r in per.get("after", [])}
    snap = db.get(Snapshot, run.snapshot_id) if run.snapshot_id else None
    ims = {im["id"]: im for im in (snap.content["images"] if snap else [])}
    ids = [i for i in ims if i in before or i in after]
    items = []
    for iid in ids:
        b, a = before.get(iid), after.get(iid)
        if error is not None and not (a or b)[ERROR_STAT[error]]:
            continue
        change = a["f1"] - b["f1"] if a and b else None
        items.append((iid, b, a, change))
    if label is not None:
        from worker.codecs import norm_label  # torch-free

        with_pred = set(db.scalars(select(Prediction.image_id).where(
            Prediction.run_id == run.id, Prediction.label == label).distinct()))
        items = [t for t in items if t[0] in with_pred or any(norm_label(g[0]) == norm_label(label)
                                                              for g in ims[t[0]]["boxes"])]
    if sort == "image":
        items.sort(key=lambda t: t[0])
    else:
        sign = -1 if sort == "most_improved" else 1
        items.sort(key=lambda t: (t[3] is None, sign * (t[3] or 0), t[0]))
    page = items[offset: offset + limit]
    boxes: dict[tuple[int, str], list] = {}
    if page:
        for p in db.scalars(select(Prediction).where(
                Prediction.run_id == run.id, Prediction.task == "detect", Prediction.label.is_not(None),
                Prediction.image_id.in_([t[0] for t in page])).order_by(Prediction.id)):
            boxes.setdefault((p.image_id, p.phase), []).append(
                {"label": p.label, "box": [p.x1, p.y1, p.x2, p.y2], "score": p.score})
    out = []
    for iid, b, a, change in page:
        im = ims[iid]
        out.append({"image_id": iid, "file_name": im["file_name"], "width": im["width"], "height": im["height"],
                    "ground_truth": [{"label": g[0], "box": g[1:5]} for g in im["boxes"]],
                    "before": boxes.get((iid, "before"), []) if b else None,
                    "after": boxes.get((iid, "after"), []) if a else None,
                    "stats_before": b, "stats_after": a, "change": change})
    return {"items": out, "total": len(items)}


@router.post("/runs/{run_id}/accept", response_model=AcceptOut)
def accept(db: DB, user: CurrentUser, run_id: int, body: AcceptIn) -> AcceptOut:
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
