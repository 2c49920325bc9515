"""Labels of a project: name (unique, case-insensitively), colour, hotkey (unique)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.api.deps import Id, DB, CurrentUser, get_project
from backend.models import Label, Role, label_key
from backend.schemas import LabelCreate, LabelOut, LabelPatch

router = APIRouter(tags=["labels"])


def check_label_unique(db: Session, project_id: int, name: str | None, hotkey: str | None,
                       exclude_id: int | None = None) -> None:
    """409 when another label of the project has this name (ignoring case) or this hotkey."""
    others = select(Label).where(Label.project_id == project_id)
    if exclude_id is not None:
        others = others.where(Label.id != exclude_id)
    if name is not None:
        taken = db.scalar(others.where(Label.name_key == label_key(name)))
        if taken is not None:
            raise HTTPException(409, f"label name {name!r} already exists in this project (as {taken.name!r})")
    if hotkey is not None:
        taken = db.scalar(others.where(Label.hotkey == hotkey))
        if taken is not None:
            raise HTTPException(409, f"hotkey {hotkey!r} is already used by label {taken.name!r}")


def flush_label(db: Session, label: Label) -> Label:
    """Write the label; a concurrent create of the same name (or hotkey) loses here: 409, not 500."""
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise HTTPException(409, f"label name {label.name!r} or hotkey {label.hotkey!r} was just taken "
                                 "in this project by another request") from None
    return label


def _label(db: Session, project_id: int, label_id: int) -> Label:
    label = db.get(Label, label_id)
    if label is None or label.project_id != project_id:
        raise HTTPException(404, f"label {label_id} not found in project {project_id}")
    return label


@router.get("/projects/{project_id}/labels", response_model=list[LabelOut])
def list_labels(db: DB, user: CurrentUser, project_id: Id) -> list[Label]:
    return get_project(db, user, project_id).labels


@router.post("/projects/{project_id}/labels", response_model=LabelOut, status_code=status.HTTP_201_CREATED)
def create_label(db: DB, user: CurrentUser, project_id: Id, body: LabelCreate) -> Label:
    get_project(db, user, project_id, Role.admin)
    check_label_unique(db, project_id, body.name, body.hotkey)
    label = Label(project_id=project_id, name=body.name, color=body.color, hotkey=body.hotkey)
    db.add(label)
    return flush_label(db, label)


@router.patch("/projects/{project_id}/labels/{label_id}", response_model=LabelOut)
def patch_label(db: DB, user: CurrentUser, project_id: Id, label_id: Id, body: LabelPatch) -> Label:
    get_project(db, user, project_id, Role.admin)
    label = _label(db, project_id, label_id)
    fields = body.model_fields_set
    if "name" in fields and body.name is None or "color" in fields and body.color is None:
        raise HTTPException(422, "name and color may not be null")
    check_label_unique(db, project_id, body.name, body.hotkey, exclude_id=label_id)
    for field in fields:  # hotkey: null clears it
        setattr(label, field, getattr(body, field))
    return flush_label(db, label)


@router.delete("/projects/{project_id}/labels/{label_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_label(db: DB, user: CurrentUser, project_id: Id, label_id: Id) -> None:
    """Deleting a label deletes its boxes (the database cascades)."""
    get_project(db, user, project_id, Role.admin)
    db.delete(_label(db, project_id, label_id))
    db.flush()
