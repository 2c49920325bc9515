"""Users and API tokens. Tokens are random, shown once, and stored only as sha256."""
from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import ApiToken, User

TOKEN_PREFIX = "vs_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, name: str = "") -> str:
    """Create a token for `user`; the plaintext is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), prefix=token[:10]))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    # One query (token joined to its user): it runs on every request.
    return session.scalar(select(User).join(ApiToken, ApiToken.user_id == User.id)
                          .where(ApiToken.token_hash == hash_token(token)))


def bootstrap_admin(session: Session, data_dir: Path) -> str:
    """First start: create user `admin` and a token, kept in `<data>/admin_token` (mode 600).

    Later starts return the same token from that file, so the start command can print it each time.
    """
    token_file = Path(data_dir) / "admin_token"
    admin = session.scalar(select(User).where(User.username == "admin"))
    if admin is not None and token_file.exists():
        token = token_file.read_text().strip()
        if user_for_token(session, token) is not None:
            return token
    if admin is None:
        admin = User(username="admin", is_admin=True)
        session.add(admin)
        session.flush()
    token = issue_token(session, admin, name="bootstrap")
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return token
