"""Shared fixtures.

`db_url` is parametrised: every test that uses it runs on SQLite and again on PostgreSQL
(STUDIO_TEST_PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test). Each test gets a
fresh database migrated by Alembic: a throw-away PostgreSQL database per test session, emptied
between tests.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from backend.db import migrate

PG_ADMIN_URL = os.environ.get("STUDIO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        eng = create_engine(PG_ADMIN_URL)
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_database():
    """A new, migrated PostgreSQL database for this test session; dropped at the end."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (CI must start it)")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    name = f"studio_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    migrate(url)
    yield url
    eng = create_engine(url)
    eng.dispose()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_pg(url: str) -> None:
    from backend.models import Base

    eng = create_engine(url)
    with eng.begin() as c:
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        c.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'studio.db'}"
        migrate(url)
        return url
    url = request.getfixturevalue("pg_database")
    _truncate_pg(url)
    return url


@pytest.fixture
def settings(db_url: str, tmp_path: Path):
    from backend.config import Settings

    return Settings(data_dir=tmp_path / "data", database_url=db_url)


@pytest.fixture
def app(settings):
    from backend.main import create_app

    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def admin_token(app) -> str:
    from backend.auth import bootstrap_admin
    from backend.db import session_scope

    with session_scope(app.state.sessionmaker) as s:
        return bootstrap_admin(s, app.state.settings.data_dir)


@pytest.fixture
def client(app, admin_token):
    """An httpx client against the app, signed in as the bootstrap admin."""
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {admin_token}"
        yield c


def cli_runner(monkeypatch, data_dir: Path, db_url: str):
    """Invoke the `studio` CLI in-process with its settings pointed at `data_dir` and `db_url`."""
    from typer.testing import CliRunner

    from backend.cli import app
    from backend.config import get_settings

    monkeypatch.setenv("STUDIO_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DATABASE_URL", db_url)
    get_settings.cache_clear()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def cli(db_url, tmp_path, monkeypatch):
    """The CLI on the parametrised database (SQLite and PostgreSQL)."""
    from backend.config import get_settings

    yield cli_runner(monkeypatch, tmp_path / "data", db_url)
    get_settings.cache_clear()
