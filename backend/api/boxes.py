"""Boxes: create, move/resize/relabel, delete. Every write names the version it read
(optimistic locking); a stale one gets 409 with the current box so the client can merge."""
from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from backend.api.deps import Id, DB, CurrentUser, require_member
from backend.api.images import get_image
from backend.errors import InvalidInput
from backend.models import Box, BoxSource, Image, Label, Role, User
from backend.schemas import INT32_MAX, BoxCreate, BoxOut, BoxPatch

router = APIRouter(tags=["boxes"])


def check_coords(image: Image, x1: float, y1: float, x2: float, y2: float) -> None:
    """Pixels of the original image: finite, inside 0..width / 0..height, with positive size."""
    for name, v, hi in (("x1", x1, image.width), ("y1", y1, image.height),
                        ("x2", x2, image.width), ("y2", y2, image.height)):
        if not math.isfinite(v):
            raise InvalidInput(f"{name}: {v} is not a finite number")
        if not 0 <= v <= hi:
            raise InvalidInput(f"{name}: {v} is outside the image (0..{hi})")
    if x2 <= x1:
        raise InvalidInput(f"x2: must be greater than x1 (x1={x1}, x2={x2})")
    if y2 <= y1:
        raise InvalidInput(f"y2: must be greater than y1 (y1={y1}, y2={y2})")


def _check_label(db: Session, image: Image, label_id: int) -> None:
    if db.scalar(select(Label.project_id).where(Label.id == label_id)) != image.project_id:
        raise InvalidInput(f"label_id: label {label_id} is not a label of this image's project")


def _box(db: Session, user: User, box_id: int, need: Role) -> tuple[Box, Image]:
    box = db.get(Box, box_id)
    if box is None:
        raise HTTPException(404, f"box {box_id} not found")
    image = db.get(Image, box.image_id)
    require_member(db, user, image.project_id, need, f"box {box_id} not found")
    return box, image


def _stale(db: Session, box_id: int, sent: int) -> JSONResponse:
    db.rollback()
    box = db.get(Box, box_id)
    if box is None:
        raise HTTPException(404, f"box {box_id} was deleted by someone else")
    return JSONResponse(status_code=409, content={
        "detail": f"box {box_id} is at version {box.version}, you sent version {sent}: "
                  "someone else changed it; here is the current box",
        "current": BoxOut.model_validate(box).model_dump(mode="json"),
    })


_STALE = {409: {"description": "Stale version: `detail` and the `current` box."}}


@router.post("/images/{image_id}/boxes", response_model=BoxOut, status_code=status.HTTP_201_CREATED)
def create_box(db: DB, user: CurrentUser, image_id: Id, body: BoxCreate) -> Box:
    image = get_image(db, user, image_id, Role.annotator)
    _check_label(db, image, body.label_id)
    check_coords(image, body.x1, body.y1, body.x2, body.y2)
    box = Box(image_id=image.id, label_id=body.label_id, x1=body.x1, y1=body.y1, x2=body.x2, y2=body.y2,
              source=BoxSource.human, version=1, attributes={}, updated_by_id=user.id)
    db.add(box)
    db.flush()
    db.refresh(box)
    return box


@router.get("/boxes/{box_id}", response_model=BoxOut)
def read_box(db: DB, user: CurrentUser, box_id: Id) -> Box:
    return _box(db, user, box_id, Role.viewer)[0]


@router.patch("/boxes/{box_id}", response_model=BoxOut, responses=_STALE)
def patch_box(db: DB, user: CurrentUser, box_id: Id, body: BoxPatch):
    box, image = _box(db, user, box_id, Role.annotator)
    if box.version != body.version:
        return _stale(db, box_id, body.version)
    changes = {f: getattr(body, f) for f in body.model_fields_set - {"version"}}
    if any(v is None for v in changes.values()):
        raise InvalidInput(f"{', '.join(f for f, v in changes.items() if v is None)}: may not be null")
    if "label_id" in changes:
        _check_label(db, image, changes["label_id"])
    coords = {k: changes.get(k, getattr(box, k)) for k in ("x1", "y1", "x2", "y2")}
    check_coords(image, **coords)
    # Compare-and-set on the version: of two concurrent writers exactly one wins.
    res = db.execute(
        update(Box).where(Box.id == box_id, Box.version == body.version)
        .values(**changes, version=body.version + 1, updated_by_id=user.id)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:
        return _stale(db, box_id, body.version)
    db.flush()
    db.refresh(box)
    return box


@router.delete("/boxes/{box_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_STALE)
def delete_box(db: DB, user: CurrentUser, box_id: Id,
               version: Annotated[int, Query(ge=0, le=INT32_MAX, description="the version the client read")]):
    _box(db, user, box_id, Role.annotator)
    res = db.execute(delete(Box).where(Box.id == box_id, Box.version == version)
                     .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return _stale(db, box_id, version)
    return None
