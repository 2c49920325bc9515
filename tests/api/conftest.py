"""Helpers for the REST API tests: tiny images made in code, users with roles, snapshots of state."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image as PILImage


def image_bytes(w: int = 32, h: int = 24, fmt: str = "PNG", color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (w, h), color).save(buf, fmt)
    return buf.getvalue()


def noise_png(w: int, h: int) -> bytes:
    """Incompressible pixels, so the file is large for its size."""
    import os

    buf = io.BytesIO()
    PILImage.frombytes("RGB", (w, h), os.urandom(w * h * 3)).save(buf, "PNG")
    return buf.getvalue()


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose IHDR claims w x h pixels and that holds no pixel data: a bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def project(client) -> dict:
    r = client.post("/api/projects", json={"name": "karts", "labels": [
        {"name": "kart", "color": "#FF0000", "hotkey": "1"}, {"name": "banana", "hotkey": "b"}]})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def make_user(client):
    """make_user(name, project_id=None, role=None) -> auth headers of a new non-admin user."""
    def make(name: str, project_id: int | None = None, role: str | None = None) -> dict:
        r = client.post("/api/users", json={"username": name})
        assert r.status_code == 201, r.text
        uid = r.json()["id"]
        tok = client.post(f"/api/users/{uid}/tokens", json={"name": "test"}).json()["token"]
        if project_id is not None:
            r = client.post(f"/api/projects/{project_id}/members", json={"user_id": uid, "role": role})
            assert r.status_code == 200, r.text
        return auth(tok)

    return make


@pytest.fixture
def upload(client):
    """upload(project_id, {name: bytes}) -> response."""
    def up(project_id: int, files: dict[str, bytes], c=None):
        c = c or client
        return c.post(f"/api/projects/{project_id}/images",
                      files=[("files", (n, b, "application/octet-stream")) for n, b in files.items()])

    return up


@pytest.fixture
def state(app):
    """state() -> (row counts of images and boxes, files under the data dir): to assert nothing changed."""
    from sqlalchemy import func, select

    from backend.models import Box, Image

    def snap():
        with app.state.sessionmaker() as s:
            counts = (s.scalar(select(func.count()).select_from(Image)), s.scalar(select(func.count()).select_from(Box)))
        return counts, files_under(app.state.settings.data_dir)

    return snap


@pytest.fixture
def make_client(settings):
    """make_client(**setting_overrides) -> a TestClient signed in as admin on an app with those settings."""
    from fastapi.testclient import TestClient

    from backend.auth import bootstrap_admin
    from backend.db import session_scope
    from backend.main import create_app

    made = []

    def make(**overrides):
        app = create_app(settings.model_copy(update=overrides))
        with session_scope(app.state.sessionmaker) as s:
            token = bootstrap_admin(s, app.state.settings.data_dir)
        c = TestClient(app)
        c.headers["Authorization"] = f"Bearer {token}"
        made.append((app, c))
        return c

    yield make
    for app, c in made:
        c.close()
        app.state.engine.dispose()
