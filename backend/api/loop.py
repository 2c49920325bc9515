"""The loop over the API: send a run's worst / most uncertain images to review, the review queue,
a predict run's uncertainty ranking, retrain with the corrections, and a run's lineage with the
parent -> child Δ. Sending and retraining need the annotator role; reading needs membership."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from backend import loop
from backend.api.deps import DB, CurrentUser, Id, SettingsDep, get_project
from backend.api.runs import run_for
from backend.models import Image, Role, Run
from backend.runs import run_view

router = APIRouter(tags=["loop"])


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(10, ge=1, le=loop.MAX_N, description="how many images")
    by: Literal["change", "missed", "false_box", "wrong_label", "uncertainty"] = Field(
        "change", description="change: most regressed (or lowest f1) first; missed / false_box / wrong_label: "
                              "most of that error first; uncertainty: a predict run's least confident first")


@router.post("/runs/{run_id}/review")
def send_to_review(db: DB, user: CurrentUser, run_id: Id, body: ReviewIn) -> dict:
    """The run's N worst images become its review queue (status in_review), in order."""
    return loop.send_to_review(db, run_for(db, user, run_id, Role.annotator), body.n, body.by)


@router.get("/runs/{run_id}/uncertainty")
def uncertainty(db: DB, user: CurrentUser, run_id: Id, offset: int = Query(0, ge=0),
                limit: int = Query(100, ge=1, le=10_000)) -> dict:
    """A predict run's images, most uncertain first (empty / unparseable, then the lowest box score)."""
    items = loop.uncertainty(db, run_for(db, user, run_id))
    page = items[offset: offset + limit]
    names = dict(db.execute(select(Image.id, Image.file_name).where(Image.id.in_([i["image_id"] for i in page]))).all())
    return {"items": [{**i, "file_name": names.get(i["image_id"])} for i in page], "total": len(items)}


@router.get("/projects/{project_id}/review-queue")
def review_queue(db: DB, user: CurrentUser, project_id: Id, run_id: Id | None = None) -> dict:
    """The review queue of a run (default: the project's latest), in order, with each image's status."""
    get_project(db, user, project_id)
    if run_id is not None:
        run_for(db, user, run_id)
    return loop.review_queue(db, project_id, run_id)


@router.post("/runs/{run_id}/retrain", status_code=status.HTTP_201_CREATED)
def retrain(db: DB, user: CurrentUser, settings: SettingsDep, run_id: Id) -> dict:
    """A new train run from this run's config on a new snapshot (the corrected data), and this
    run's adapter evaluated on the same held-out images for the comparison."""
    parent = run_for(db, user, run_id, Role.annotator)
    ids = loop.retrain(db, settings, parent, user.id)
    return {**run_view(db.get(Run, ids["child_run_id"])), "compare_run_id": ids["compare_run_id"]}


@router.get("/runs/{run_id}/lineage")
def lineage(db: DB, user: CurrentUser, run_id: Id) -> dict:
    """Ancestors, retrained children, and the parent -> child Δ on the same held-out images."""
    return loop.lineage(db, run_for(db, user, run_id))
