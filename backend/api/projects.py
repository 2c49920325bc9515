"""Projects and their members. Only members see a project (404 for anyone else)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import func, select

from backend.api.deps import Id, DB, CurrentUser, Store, get_project, project_role
from backend.api.images import drop_unreferenced
from backend.api.labels import check_label_unique, flush_label
from backend.models import Image, ImageStatus, Label, Membership, Project, Role, User
from backend.schemas import (
    LabelCreate,
    MemberAdd,
    MemberOut,
    MemberPatch,
    ProjectCreate,
    ProjectDetail,
    ProjectOut,
    ProjectPatch,
)

router = APIRouter(tags=["projects"])


def _detail(db: DB, project: Project, role: Role | None) -> ProjectDetail:
    counts = {s: 0 for s in ImageStatus}
    for st, n in db.execute(
        select(Image.status, func.count()).where(Image.project_id == project.id).group_by(Image.status)
    ):
        counts[ImageStatus(st)] = n
    base = ProjectOut.model_validate(project).model_dump(exclude={"role"})
    return ProjectDetail(**base, role=role, labels=project.labels, image_count=sum(counts.values()), counts=counts)


@router.post("/projects", response_model=ProjectDetail, status_code=status.HTTP_201_CREATED)
def create_project(db: DB, user: CurrentUser, body: ProjectCreate) -> ProjectDetail:
    project = Project(name=body.name, description=body.description, task_kinds=body.task_kinds)
    db.add(project)
    db.flush()
    db.add(Membership(project_id=project.id, user_id=user.id, role=Role.admin))
    for lab in body.labels:
        add_label(db, project, lab)
    db.flush()
    db.refresh(project)
    return _detail(db, project, Role.admin)


def add_label(db: DB, project: Project, body: LabelCreate) -> Label:
    check_label_unique(db, project.id, body.name, body.hotkey)
    label = Label(project_id=project.id, name=body.name, color=body.color, hotkey=body.hotkey)
    db.add(label)
    return flush_label(db, label)


@router.get("/projects", response_model=list[ProjectOut])
def list_projects(db: DB, user: CurrentUser) -> list[ProjectOut]:
    if user.is_admin:
        rows = [(p, Role.admin) for p in db.scalars(select(Project).order_by(Project.id))]
    else:
        rows = db.execute(
            select(Project, Membership.role)
            .join(Membership, Membership.project_id == Project.id)
            .where(Membership.user_id == user.id)
            .order_by(Project.id)
        ).all()
    return [ProjectOut(**ProjectOut.model_validate(p).model_dump(exclude={"role"}), role=r) for p, r in rows]


@router.get("/projects/{project_id}", response_model=ProjectDetail)
def read_project(db: DB, user: CurrentUser, project_id: Id) -> ProjectDetail:
    project = get_project(db, user, project_id)
    return _detail(db, project, project_role(db, user, project_id))


@router.patch("/projects/{project_id}", response_model=ProjectDetail)
def patch_project(db: DB, user: CurrentUser, project_id: Id, body: ProjectPatch) -> ProjectDetail:
    project = get_project(db, user, project_id, Role.admin)
    for field in body.model_fields_set:
        value = getattr(body, field)
        if value is None:
            raise HTTPException(422, f"{field}: may not be null")
        setattr(project, field, value)
    db.flush()
    return _detail(db, project, Role.admin)


@router.delete("/projects/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_project(db: DB, store: Store, user: CurrentUser, project_id: Id) -> None:
    project = get_project(db, user, project_id, Role.admin)
    files = db.execute(select(Image.sha256, Image.ext).where(Image.project_id == project_id).distinct()).all()
    db.delete(project)
    db.commit()  # the rows are gone for good before any file goes
    drop_unreferenced(db, store, files)


# ---------------------------------------------------------------- members
def _members(db: DB, project_id: int) -> list[MemberOut]:
    rows = db.execute(
        select(Membership.user_id, User.username, Membership.role)
        .join(User, User.id == Membership.user_id)
        .where(Membership.project_id == project_id)
        .order_by(Membership.id)
    ).all()
    return [MemberOut(user_id=u, username=n, role=r) for u, n, r in rows]


def _guard_last_admin(db: DB, project_id: int, user_id: int) -> None:
    """A project must keep at least one admin member, or nobody but platform admins could manage it."""
    admins = db.scalars(
        select(Membership.user_id).where(Membership.project_id == project_id, Membership.role == Role.admin)
    ).all()
    if admins == [user_id]:
        raise HTTPException(409, f"user {user_id} is the project's last admin; make another member admin first")


@router.get("/projects/{project_id}/members", response_model=list[MemberOut])
def list_members(db: DB, user: CurrentUser, project_id: Id) -> list[MemberOut]:
    get_project(db, user, project_id, Role.admin)
    return _members(db, project_id)


@router.post("/projects/{project_id}/members", response_model=MemberOut)
def add_member(db: DB, user: CurrentUser, project_id: Id, body: MemberAdd) -> MemberOut:
    """Add a user (by id or username) with a role, or change the role of an existing member."""
    get_project(db, user, project_id, Role.admin)
    if (body.user_id is None) == (body.username is None):
        raise HTTPException(422, "give exactly one of user_id or username")
    target = (db.get(User, body.user_id) if body.user_id is not None
              else db.scalar(select(User).where(User.username == body.username)))
    if target is None:
        raise HTTPException(404, f"user {body.user_id if body.user_id is not None else body.username!r} not found")
    return _set_role(db, project_id, target, body.role)


@router.patch("/projects/{project_id}/members/{user_id}", response_model=MemberOut)
def change_member(db: DB, user: CurrentUser, project_id: Id, user_id: Id, body: MemberPatch) -> MemberOut:
    get_project(db, user, project_id, Role.admin)
    target = db.get(User, user_id)
    m = _membership(db, project_id, user_id)
    if target is None or m is None:
        raise HTTPException(404, f"user {user_id} is not a member of project {project_id}")
    return _set_role(db, project_id, target, body.role)


def _membership(db: DB, project_id: int, user_id: int) -> Membership | None:
    return db.scalar(select(Membership).where(Membership.project_id == project_id, Membership.user_id == user_id))


def _set_role(db: DB, project_id: int, target: User, role: Role) -> MemberOut:
    m = _membership(db, project_id, target.id)
    if m is None:
        db.add(Membership(project_id=project_id, user_id=target.id, role=role))
    else:
        if m.role == Role.admin and role != Role.admin:
            _guard_last_admin(db, project_id, target.id)
        m.role = role
    db.flush()
    return MemberOut(user_id=target.id, username=target.username, role=role)


@router.delete("/projects/{project_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(db: DB, user: CurrentUser, project_id: Id, user_id: Id) -> None:
    get_project(db, user, project_id, Role.admin)
    m = _membership(db, project_id, user_id)
    if m is None:
        raise HTTPException(404, f"user {user_id} is not a member of project {project_id}")
    if m.role == Role.admin:
        _guard_last_admin(db, project_id, user_id)
    db.delete(m)
