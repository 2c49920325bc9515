"""QA pairs: generate (per family, seeded), list / filter, edit, delete, bulk review, JSONL export."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from backend.api.disposition import content_disposition
from backend.api.deps import Id, DB, CurrentUser, get_project, project_row, serialise
from backend.models import Image, QAPair, QASource, Role, User
from backend.errors import InvalidInput
from backend.qa import FAMILIES, store
from backend.qa import stale as stale_mod
from backend.qa.base import render
from backend.schemas import BulkResult, QAGenerateIn, QAGenerateOut, QAItemOut, QAPage, QAPatch, QAReviewIn

router = APIRouter(tags=["qa"])
_CHUNK = 1000

_COLS = (QAPair.id, QAPair.image_id, Image.file_name, QAPair.family, QAPair.template_id, QAPair.question,
         QAPair.answer, QAPair.params, QAPair.source, QAPair.reviewed, Image.split, QAPair.boxes_sig)


def _item(r, stale: bool = False) -> QAItemOut:
    params = r.params if isinstance(r.params, dict) else {}
    boxes = params.get("boxes") or []
    return QAItemOut(id=r.id, image_id=r.image_id, file_name=r.file_name, family=r.family, template_id=r.template_id,
                     question=r.question, answer=r.answer, params=params, source=QASource(r.source).value,
                     reviewed=r.reviewed, split=r.split, display_question=render(r.question, boxes),
                     display_answer=render(r.answer, boxes), stale=stale)


def _one(db: Session, qa_id: int) -> QAItemOut:
    r = db.execute(select(*_COLS).join(Image, Image.id == QAPair.image_id).where(QAPair.id == qa_id)).one()
    return _item(r, r.id in stale_mod.stale_ids(db, [(r.id, r.image_id, r.boxes_sig)]))


def _get_pair(db: Session, user: User, qa_id: int, need: Role) -> QAPair:
    return project_row(db, user, QAPair, qa_id, "QA pair", need)


@router.post("/projects/{project_id}/qa/generate", response_model=QAGenerateOut)
def generate(db: DB, user: CurrentUser, project_id: Id, body: QAGenerateIn) -> QAGenerateOut:
    """Replace the generated (unreviewed, unedited) pairs of these families, in one transaction."""
    get_project(db, user, project_id, Role.annotator)
    serialise(db, "qa.generate", project_id)  # concurrent regenerations would each insert a full set
    res = store.generate(db, project_id, body.families, seed=body.seed, per_image_cap=body.per_image_cap,
                         negatives_ratio=body.negatives_ratio, options=body.options)
    return QAGenerateOut(**res)


@router.get("/projects/{project_id}/qa", response_model=QAPage)
def list_pairs(
    db: DB, user: CurrentUser, project_id: Id,
    family: Annotated[str | None, Query(max_length=32)] = None,
    split: Annotated[str | None, Query(max_length=32, description="a split name, or 'unassigned'")] = None,
    image_id: Id | None = None,
    q: Annotated[str | None, Query(max_length=512, description="substring of the question or answer")] = None,
    reviewed: bool | None = None,
    source: QASource | None = None,
    template_id: Annotated[str | None, Query(max_length=64)] = None,
    file: Annotated[str | None, Query(max_length=512, description="substring of the image's file name")] = None,
    stale: Annotated[bool | None, Query(description="true: only stale pairs; false: only current ones")] = None,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> QAPage:
    get_project(db, user, project_id)
    conds = [QAPair.project_id == project_id]
    if family:
        conds.append(QAPair.family == family)
    if split:
        conds.append(Image.split.is_(None) if split == store.UNASSIGNED else Image.split == split)
    if image_id is not None:
        conds.append(QAPair.image_id == image_id)
    if q:
        pat = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conds.append(or_(QAPair.question.ilike(pat, escape="\\"), QAPair.answer.ilike(pat, escape="\\")))
    if reviewed is not None:
        conds.append(QAPair.reviewed.is_(reviewed))
    if source is not None:
        conds.append(QAPair.source == source)
    if template_id:
        conds.append(QAPair.template_id == template_id)
    if file:
        conds.append(Image.file_name.ilike("%" + file.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",
                                           escape="\\"))
    if stale is not None:
        # Staleness compares with the boxes now, so it is computed (per page of images), not stored.
        stale_set = list(stale_mod.iter_stale(db, project_id, conds[1:]))
        if stale:
            conds.append(QAPair.id.in_(stale_set[:100_000]) if stale_set else QAPair.id < 0)
        elif stale_set:
            conds.append(QAPair.id.not_in(stale_set[:100_000]))
    base = select(*_COLS).join(Image, Image.id == QAPair.image_id).where(*conds)
    # grouped per image: the review page shows an image once with all its pairs
    rows = db.execute(base.order_by(QAPair.image_id, QAPair.id).offset(offset).limit(limit)).all()
    total = db.scalar(select(func.count()).select_from(QAPair).join(Image, Image.id == QAPair.image_id).where(*conds))
    now_stale = stale_mod.stale_ids(db, [(r.id, r.image_id, r.boxes_sig) for r in rows])
    return QAPage(items=[_item(r, r.id in now_stale) for r in rows], total=total, offset=offset, limit=limit)


@router.patch("/qa/{qa_id}", response_model=QAItemOut)
def patch_pair(db: DB, user: CurrentUser, qa_id: Id, body: QAPatch) -> QAItemOut:
    """Editing the question or answer makes the pair "human" (regeneration keeps it)."""
    pair = _get_pair(db, user, qa_id, Role.annotator)
    fields = body.model_fields_set
    for f in ("question", "answer", "reviewed"):
        if f in fields and getattr(body, f) is None:
            raise HTTPException(422, f"{f}: may not be null")
    n_boxes = len((pair.params or {}).get("boxes") or []) if isinstance(pair.params, dict) else 0
    for f in ("question", "answer"):
        if f in fields and getattr(body, f) is not None:
            stale_mod.check_placeholders(getattr(body, f), n_boxes, f)  # 422 naming the bad {boxN}
    edited = False
    for f in ("question", "answer"):
        if f in fields and getattr(body, f) != getattr(pair, f):
            setattr(pair, f, getattr(body, f))
            edited = True
    if edited:
        pair.source = QASource.human
    if "reviewed" in fields:
        pair.reviewed = body.reviewed
        pair.reviewed_by_id = user.id if body.reviewed else None
        pair.reviewed_at = datetime.now(timezone.utc) if body.reviewed else None
    pair.updated_at = datetime.now(timezone.utc)
    db.flush()
    return _one(db, qa_id)


@router.delete("/qa/{qa_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_pair(db: DB, user: CurrentUser, qa_id: Id) -> None:
    db.delete(_get_pair(db, user, qa_id, Role.annotator))


@router.post("/projects/{project_id}/qa/review", response_model=BulkResult)
def review(db: DB, user: CurrentUser, project_id: Id, body: QAReviewIn) -> BulkResult:
    """Mark many pairs reviewed (or not); all of them or none."""
    get_project(db, user, project_id, Role.annotator)
    ids = sorted(set(body.ids))
    found: set[int] = set()
    for k in range(0, len(ids), _CHUNK):
        found.update(db.scalars(select(QAPair.id).where(QAPair.project_id == project_id,
                                                        QAPair.id.in_(ids[k:k + _CHUNK]))))
    missing = [i for i in ids if i not in found]
    if missing:
        raise HTTPException(404, f"QA pairs not found in project {project_id}: {missing[:10]}")
    now = datetime.now(timezone.utc)
    for k in range(0, len(ids), _CHUNK):
        db.execute(update(QAPair).where(QAPair.id.in_(ids[k:k + _CHUNK])).values(
            reviewed=body.reviewed, reviewed_by_id=user.id if body.reviewed else None,
            reviewed_at=now if body.reviewed else None, updated_at=now))
    return BulkResult(updated=len(ids))


@router.post("/projects/{project_id}/qa/regenerate-stale")
def regenerate_stale(db: DB, user: CurrentUser, project_id: Id) -> dict:
    """Replace the generated pairs of every image whose boxes changed since they were generated;
    pairs people edited are kept. Returns {images, deleted, inserted}."""
    get_project(db, user, project_id, Role.annotator)
    serialise(db, "qa.generate", project_id)  # same lock as generate: both replace generated pairs
    return stale_mod.regenerate_stale(db, project_id)


@router.get("/projects/{project_id}/qa/export")
def export(db: DB, user: CurrentUser, request: Request, project_id: Id,
           family: Annotated[str | None, Query(max_length=32)] = None,
           split: Annotated[str | None, Query(max_length=32)] = None) -> StreamingResponse:
    """JSONL, one pair per line: file_name, sha256, split, family, template_id, question, answer, params."""
    get_project(db, user, project_id)
    if family and family not in FAMILIES:  # the download name is built from validated values only
        raise InvalidInput(f"family: unknown family {family!r} (known: {', '.join(FAMILIES)})")
    factory = request.app.state.sessionmaker

    def lines():
        # Its own session: the request's is closed once the endpoint returns, before streaming.
        with factory() as s:
            for row in store.export_rows(s, project_id, family, split):
                yield json.dumps(row, ensure_ascii=False) + "\n"

    name = f"qa_project{project_id}{'_' + family if family else ''}{'_' + split if split else ''}.jsonl"
    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": content_disposition(name)})
