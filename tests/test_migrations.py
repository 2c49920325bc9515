"""The migrated schema must equal the models: no autogenerate diff, on SQLite and PostgreSQL."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from backend.db import schema_filter
from backend.models import Base


def test_migrations_match_models(db_url):
    engine = create_engine(db_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": schema_filter(conn.dialect.name)})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_health_needs_no_token(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        assert c.get("/api/health").json() == {"status": "ok"}
