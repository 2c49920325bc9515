"""A throw-away PostgreSQL database for a benchmark: created on the local server, dropped after."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

PG_SERVER = os.environ.get("STUDIO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def temp_database(url: str | None = None, prefix: str = "studio_bench", server: str = PG_SERVER) -> Iterator[str]:
    """Yield `url` when one is given (an existing database, left as it is), else the URL of a new,
    empty database on `server` that is dropped on exit (FORCE: a benchmark's pools may linger)."""
    if url:
        yield url
        return
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
