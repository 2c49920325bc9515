"""Auth routes: who am I, users (platform admins), API tokens (own ones; admins for anyone)."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from backend.api.deps import Id, DB, CurrentUser
from backend.auth import hash_token, issue_token
from backend.models import ApiToken, User
from backend.schemas import TokenCreate, TokenIssued, TokenOut, UserCreate, UserOut

router = APIRouter(tags=["auth"])


def _require_admin(user: User) -> None:
    if not user.is_admin:
        raise HTTPException(403, "this needs a platform admin")


def _issue(db: DB, user: User, name: str) -> TokenIssued:
    token = issue_token(db, user, name)
    row = db.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    return TokenIssued(**TokenOut.model_validate(row).model_dump(), token=token)


@router.get("/auth/me", response_model=UserOut)
def me(user: CurrentUser) -> User:
    return user


@router.get("/auth/tokens", response_model=list[TokenOut])
def list_tokens(db: DB, user: CurrentUser) -> list[ApiToken]:
    return list(db.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


@router.post("/auth/tokens", response_model=TokenIssued, status_code=status.HTTP_201_CREATED)
def create_token(db: DB, user: CurrentUser, body: TokenCreate) -> TokenIssued:
    return _issue(db, user, body.name)


@router.delete("/auth/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(db: DB, user: CurrentUser, token_id: Id) -> None:
    row = db.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:  # someone else's token: as if it did not exist
        raise HTTPException(404, f"token {token_id} not found")
    db.delete(row)


@router.get("/users", response_model=list[UserOut])
def list_users(db: DB, user: CurrentUser) -> list[User]:
    _require_admin(user)
    return list(db.scalars(select(User).order_by(User.id)))


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(db: DB, user: CurrentUser, body: UserCreate) -> User:
    _require_admin(user)
    if db.scalar(select(User.id).where(User.username == body.username)) is not None:
        raise HTTPException(409, f"username {body.username!r} is taken")
    new = User(username=body.username, is_admin=body.is_admin)
    db.add(new)
    db.flush()
    return new


@router.post("/users/{user_id}/tokens", response_model=TokenIssued, status_code=status.HTTP_201_CREATED)
def create_token_for(db: DB, user: CurrentUser, user_id: Id, body: TokenCreate) -> TokenIssued:
    _require_admin(user)
    target = db.get(User, user_id)
    if target is None:
        raise HTTPException(404, f"user {user_id} not found")
    return _issue(db, target, body.name)


@router.get("/users/{user_id}/tokens", response_model=list[TokenOut])
def list_tokens_of(db: DB, user: CurrentUser, user_id: Id) -> list[ApiToken]:
    """A user's tokens (name, prefix, dates; never the token itself)."""
    _require_admin(user)
    if db.get(User, user_id) is None:
        raise HTTPException(404, f"user {user_id} not found")
    return list(db.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)))


@router.delete("/users/{user_id}/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token_of(db: DB, user: CurrentUser, user_id: Id, token_id: Id) -> None:
    """Revoke: the token stops working at once (its hash row is deleted)."""
    _require_admin(user)
    row = db.get(ApiToken, token_id)
    if row is None or row.user_id != user_id:
        raise HTTPException(404, f"token {token_id} of user {user_id} not found")
    db.delete(row)
