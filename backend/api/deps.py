"""Shared FastAPI dependencies: the DB session, the signed-in user, project access by role."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backend.auth import user_for_token
from backend.config import Settings
from backend.db import session_scope
from backend.models import ROLE_RANK, Membership, Project, Role, User
from backend.schemas import Id, Offset, Version  # noqa: F401  (re-exported for the routers)
from backend.storage import ImageStore

_bearer = HTTPBearer(auto_error=False)


def get_db(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.sessionmaker) as session:
        yield session


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ImageStore:
    return request.app.state.store


# scope="function": commit before the response is sent, so a 2xx means the write is durable and
# the client's next request sees it (the default scope commits only after the response went out).
DB = Annotated[Session, Depends(get_db, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
Store = Annotated[ImageStore, Depends(get_store)]


def current_user(
    db: DB, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    if creds is None:
        raise HTTPException(401, "missing API token (send 'Authorization: Bearer <token>')",
                            headers={"WWW-Authenticate": "Bearer"})
    user = user_for_token(db, creds.credentials)
    if user is None:
        raise HTTPException(401, "invalid API token", headers={"WWW-Authenticate": "Bearer"})
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def project_role(db: Session, user: User, project_id: int) -> Role | None:
    if user.is_admin:
        return Role.admin
    return db.scalar(
        select(Membership.role).where(Membership.project_id == project_id, Membership.user_id == user.id)
    )


def get_project(db: Session, user: User, project_id: int, need: Role = Role.viewer) -> Project:
    """The project if `user` may act on it with at least role `need`.

    Non-members get 404, not 403, so project ids do not leak; members with too low a role get 403.
    """
    if user.is_admin:
        project, role = db.get(Project, project_id), Role.admin
    else:  # the project and the caller's role in one query: it runs on nearly every request
        project, role = db.execute(
            select(Project, Membership.role).join(Membership, Membership.project_id == Project.id)
            .where(Project.id == project_id, Membership.user_id == user.id)).one_or_none() or (None, None)
    if project is None:
        raise HTTPException(404, f"project {project_id} not found")
    if ROLE_RANK[role] < ROLE_RANK[need]:
        raise HTTPException(403, f"this needs role '{need.value}' in the project; you are '{role.value}'")
    return project


def require_member(db: Session, user: User, project_id: int, need: Role, not_found: str) -> None:
    """Check `user` may act on the project with role `need`; a non-member gets 404 `not_found`
    (naming the row asked for, so neither the row nor the project leaks), a low role 403."""
    try:
        get_project(db, user, project_id, need)
    except HTTPException as e:
        if e.status_code == 404:
            raise HTTPException(404, not_found) from None
        raise


def project_row(db: Session, user: User, model, row_id: int, what: str, need: Role = Role.viewer):
    """A row of `model` (anything with a `project_id`) if `user` may act on its project with role
    `need`. A missing row and a non-member both get the same 404 naming the row, so ids do not leak."""
    row = db.get(model, row_id)
    if row is None:
        raise HTTPException(404, f"{what} {row_id} not found")
    require_member(db, user, row.project_id, need, f"{what} {row_id} not found")
    return row


def serialise(db: Session, purpose: str, project_id: int) -> None:
    """Hold a lock for `purpose` on the project until this transaction ends, so two requests doing
    the same read-modify-write (QA regeneration) run one after the other. PostgreSQL: a
    transaction-scoped advisory lock (blocks no other writer of the project). SQLite: its single
    writer lock already orders them, and the driver begins the transaction only at the first write."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(hashtext(:p), :k)"), {"p": purpose, "k": project_id})
