from __future__ import annotations

import pytest

from tests.api.conftest import make_user  # noqa: F401  (fixture)
from tests.formats.helpers import STK_DATA, new_project, post_import


@pytest.fixture
def stk_project(client) -> int:
    """A project with the three real SuperTuxKart frames imported."""
    pid = new_project(client, "stk")
    files = {str(p.relative_to(STK_DATA)): p.read_bytes() for p in STK_DATA.rglob("*") if p.is_file()}
    r = post_import(client, pid, "supertuxkart", files)
    assert r.status_code == 200, r.text
    return pid


@pytest.fixture
def seed_images(app):
    """seed_images(pid, [(file_name, meta), ...]) -> ids: image rows straight into the database
    (splits need no pixels)."""
    from backend.db import session_scope
    from backend.models import Image

    def seed(pid: int, rows: list[tuple[str, dict]]) -> list[int]:
        with session_scope(app.state.sessionmaker) as s:
            ims = [Image(project_id=pid, sha256=f"{i:064x}", file_name=fn, ext="png", width=300, height=200, meta=m)
                   for i, (fn, m) in enumerate(rows)]
            s.add_all(ims)
            s.flush()
            return [im.id for im in ims]

    return seed
