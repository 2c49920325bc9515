"""Splits: assign train/val/test by image, metadata group or track; check a split for leakage."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend import splits
from backend.api.deps import Id, DB, CurrentUser, get_project
from backend.models import Role
from backend.schemas import SplitCheck, SplitIn, SplitOut

router = APIRouter(tags=["splits"])


@router.post("/projects/{project_id}/splits", response_model=SplitOut)
def make_split(db: DB, user: CurrentUser, project_id: Id, body: SplitIn) -> SplitOut:
    get_project(db, user, project_id, Role.annotator)
    return SplitOut(**splits.make_split(db, project_id, body.mode, key=body.key, ratios=body.ratios,
                                        held_out=body.held_out, seed=body.seed, dry_run=body.dry_run,
                                        check_key=body.check_key))


@router.get("/projects/{project_id}/splits/check", response_model=SplitCheck)
def check(db: DB, user: CurrentUser, project_id: Id,
          key: Annotated[str, Query(min_length=1, max_length=100)] = "race_id") -> SplitCheck:
    get_project(db, user, project_id)
    return SplitCheck(**splits.check(db, project_id, key))
