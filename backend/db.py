"""SQLAlchemy 2 engine and sessions; schema changes only through Alembic migrations."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parent.parent


def _md5(s: str | None) -> str | None:
    return None if s is None else hashlib.md5(s.encode()).hexdigest()


# Connections per process; backend.api.limit admits no more API requests than POOL_SIZE + MAX_OVERFLOW.
POOL_SIZE, MAX_OVERFLOW, POOL_TIMEOUT = 10, 20, 30.0


def pool_capacity() -> int:
    return POOL_SIZE + MAX_OVERFLOW


def make_engine(url: str) -> Engine:
    pool_size, max_overflow, pool_timeout = POOL_SIZE, MAX_OVERFLOW, POOL_TIMEOUT  # read per call: tests shrink them
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=pool_size,
                               max_overflow=max_overflow, pool_timeout=pool_timeout)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            # WAL lets the API read while a worker writes; FKs are off by default in SQLite.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            # PostgreSQL's md5(text): the seeded order of a split (backend.splits) is the same on both
            dbapi_conn.create_function("md5", 1, _md5, deterministic=True)

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow,
                         pool_timeout=pool_timeout)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back everything on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def bulk_insert(session: Session, table, cols: tuple[str, ...], rows: list[tuple]) -> None:
    """Rows of driver-ready values in the session's transaction: PostgreSQL COPY, else DBAPI executemany.

    Going past SQLAlchemy's per-row parameter processing is what makes 100k boxes take well under a
    second; values are prepared by the caller (JSON as text, enums as their string value).
    """
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f'COPY "{table.name}" ({", ".join(cols)}) FROM STDIN') as cp:
                for r in rows:
                    cp.write_row(r)
    else:
        marks = ", ".join("?" if conn.dialect.paramstyle == "qmark" else "%s" for _ in cols)
        conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({", ".join(cols)}) VALUES ({marks})', rows)


def schema_filter(dialect: str):
    """Alembic include_object: indexes marked `postgresql_only` (trigram GIN) exist only there."""

    def include(obj, name, type_, reflected, compare_to):  # noqa: ANN001
        if type_ == "index" and not reflected and obj.info.get("postgresql_only"):
            return dialect == "postgresql"
        return True

    return include


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["database_url"] = url
    return cfg


def migrate(url: str) -> None:
    """Upgrade the database at `url` to the newest migration."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")
