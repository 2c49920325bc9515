"""Bad uploads: each is a 4xx naming the file and the problem, leaves the database and the store
exactly as they were, and the server keeps serving."""
from __future__ import annotations


import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.api.conftest import image_bytes, noise_png, png_header_only
from tests.formats.helpers import zip_bytes


GOOD = image_bytes(16, 16)
TRUNCATED = image_bytes(64, 64, "JPEG")[:200]
CASES = {
    "truncated": ({"ok.png": GOOD, "cut.jpg": TRUNCATED}, 422, ["cut.jpg", "not a readable image"]),
    "fake jpg": ({"ok.png": GOOD, "notes.jpg": b"this is text, not a JPEG"}, 422, ["notes.jpg", "not a readable image"]),
    "empty file": ({"ok.png": GOOD, "empty.png": b""}, 422, ["empty.png", "empty"]),
    "pdf as png": ({"doc.png": b"%PDF-1.4\n%..."}, 422, ["doc.png"]),
    "bomb header": ({"ok.png": GOOD, "bomb.png": png_header_only(100_000, 100_000)}, 413,
                    ["bomb.png", "decompression bomb"]),
    "zip slip": ({"batch.zip": zip_bytes({"ok.png": GOOD, "../evil.png": GOOD})}, 422, ["batch.zip", "../evil.png", ".."]),
    "zip absolute": ({"batch.zip": zip_bytes({"ok.png": GOOD, "/etc/evil.png": GOOD})}, 422,
                     ["batch.zip", "/etc/evil.png", "absolute"]),
    "zip with bad image": ({"batch.zip": zip_bytes({"ok.png": GOOD, "in/cut.jpg": TRUNCATED})}, 422, ["in/cut.jpg"]),
    "not a zip": ({"batch.zip": b"PK but not really"}, 422, ["batch.zip", "zip"]),
    "dotdot file name": ({"../up.png": GOOD}, 422, ["../up.png"]),
    "same name twice": ({"batch.zip": zip_bytes({"a.png": GOOD}), "a.png": image_bytes(3, 3)}, 422, ["a.png", "twice"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_upload_changes_nothing(client, project, upload, state, case):
    files, code, words = CASES[case]
    pid = project["id"]
    upload(pid, {"existing.png": image_bytes(20, 20)})
    before = state()
    r = upload(pid, files)
    assert r.status_code == code, r.text
    for w in words:
        assert w in r.json()["detail"], (w, r.json())
    assert state() == before
    assert client.get("/api/health").status_code == 200
    assert upload(pid, {"after.png": image_bytes(21, 21)}).status_code == 201  # still serving


def test_duplicate_file_name_in_project_is_409(client, project, upload, state):
    pid = project["id"]
    upload(pid, {"a.png": GOOD})
    before = state()
    r = upload(pid, {"new.png": image_bytes(5, 5), "a.png": image_bytes(6, 6)})
    assert r.status_code == 409 and "a.png" in r.json()["detail"]
    assert state() == before


def test_every_bad_file_is_named(client, project, upload):
    r = upload(project["id"], {"x.jpg": b"nope", "y.png": b"nope too", "ok.png": GOOD})
    assert r.status_code == 422 and "x.jpg" in r.json()["detail"] and "y.png" in r.json()["detail"]


def test_oversized_file_is_413(make_client, state):
    c = make_client(max_upload_bytes=5_000)
    pid = c.post("/api/projects", json={"name": "p"}).json()["id"]
    big = noise_png(80, 80)
    assert len(big) > 5_000
    before = state()
    r = c.post(f"/api/projects/{pid}/images", files=[("files", ("small.png", GOOD)), ("files", ("big.png", big))])
    assert r.status_code == 413 and "big.png" in r.json()["detail"] and "5000" in r.json()["detail"]
    assert state() == before
    assert c.post(f"/api/projects/{pid}/images", files=[("files", ("small.png", GOOD))]).status_code == 201


def test_real_decompression_bomb_is_413(make_client, state):
    """A real, tiny file that decodes to many pixels: over a configured cap before it is decoded."""
    c = make_client(max_image_pixels=1_000_000)
    pid = c.post("/api/projects", json={"name": "p"}).json()["id"]
    bomb = image_bytes(2000, 2000, color=(0, 0, 0))
    assert len(bomb) < 50_000
    before = state()
    r = c.post(f"/api/projects/{pid}/images", files=[("files", ("bomb.png", bomb))])
    assert r.status_code == 413 and "bomb.png" in r.json()["detail"] and "4000000 pixels" in r.json()["detail"]
    assert state() == before


def test_too_many_zip_members_is_413(make_client, state):
    c = make_client(max_archive_members=3)
    pid = c.post("/api/projects", json={"name": "p"}).json()["id"]
    z = zip_bytes({f"{n}.png": image_bytes(4, 4 + n) for n in range(5)})
    before = state()
    r = c.post(f"/api/projects/{pid}/images", files=[("files", ("many.zip", z))])
    assert r.status_code == 413 and "many.zip" in r.json()["detail"]
    assert state() == before


_TRIGGERS = {
    "sqlite": ["CREATE TRIGGER boom BEFORE INSERT ON images WHEN NEW.file_name = 'boom.png' "
               "BEGIN SELECT RAISE(ABORT, 'boom'); END"],
    "postgresql": [
        "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN IF NEW.file_name = 'boom.png' THEN "
        "RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER boom BEFORE INSERT ON images FOR EACH ROW EXECUTE FUNCTION boom()"],
}
_DROP = {"sqlite": ["DROP TRIGGER boom"],
         "postgresql": ["DROP TRIGGER boom ON images", "DROP FUNCTION boom()"]}


def test_failed_database_write_removes_the_new_files(client, app, project, upload, state):
    """A real database error during the insert (a trigger that refuses one row): the rows roll back
    and exactly the files this upload wrote are removed; a file stored before stays."""
    pid = project["id"]
    upload(pid, {"old.png": GOOD})
    before = state()
    dialect = app.state.engine.dialect.name
    with app.state.engine.begin() as conn:
        for stmt in _TRIGGERS[dialect]:
            conn.execute(text(stmt))
    try:
        # the same bytes as old.png (already stored) plus two new files
        with TestClient(app, raise_server_exceptions=False) as c:
            c.headers.update(client.headers)
            r = upload(pid, {"again.png": GOOD, "new.png": image_bytes(7, 7), "boom.png": image_bytes(8, 8)}, c)
        assert r.status_code == 500  # an unexpected database error, not the client's fault
    finally:
        with app.state.engine.begin() as conn:
            for stmt in _DROP[dialect]:
                conn.execute(text(stmt))
    assert state() == before
    assert upload(pid, {"boom.png": image_bytes(8, 8)}).status_code == 201
