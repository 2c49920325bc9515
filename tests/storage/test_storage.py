"""The object store behind STUDIO_STORAGE_URL, on the data directory and on a real S3-compatible
server (moto's, started by conftest): images, thumbnails, run folders, the API's upload / file /
thumbnail path through it, and a failed import leaving no object behind."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.config import Settings
from backend.storage import LocalStorage, S3Storage, check_image, image_store, open_storage
from tests.api.conftest import image_bytes
from tests.storage.conftest import objects

KINDS = ["local", "s3"]


def settings_of(kind: str, tmp_path, request, name: str = "data", db_url: str | None = None) -> Settings:
    url = None
    if kind == "s3":
        url = f"s3://{request.getfixturevalue('bucket')}/studio"
    return Settings(data_dir=tmp_path / name, storage_url=url, database_url=db_url)


def stored(kind: str, settings: Settings, prefix: str = "") -> set[str]:
    """Keys of every stored object (S3: in the bucket; local: files under the data directory)."""
    if kind == "s3":
        bucket, _, pre = settings.storage_url[5:].partition("/")
        return {k[len(pre) + 1:] for k in objects(bucket, f"{pre}/{prefix}")}
    root = settings.data_dir / prefix
    return {p.relative_to(settings.data_dir).as_posix() for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.mark.parametrize("kind", KINDS)
def test_images_put_once_read_from_another_cache_and_removed(kind, tmp_path, request):
    s = settings_of(kind, tmp_path, request)
    store = image_store(s)
    img = check_image(image_bytes(40, 30), "a.png", max_bytes=10**6, max_pixels=10**6)
    assert not store.has(img.sha256, img.ext)
    assert store.put(img) is True
    assert store.put(img) is False  # content-addressed: the same bytes are stored once
    assert store.has(img.sha256, img.ext)
    assert stored(kind, s, "images") == {store.key(img.sha256, img.ext)}
    # another machine: its own (empty) data directory, the same store
    other = image_store(Settings(data_dir=tmp_path / "other", storage_url=s.storage_url)) if kind == "s3" else store
    assert other.path(img.sha256, img.ext).read_bytes() == img.data
    thumb = other.thumbnail(img.sha256, img.ext)
    assert thumb.read_bytes()[:2] == b"\xff\xd8"
    assert store.thumbnail(img.sha256, img.ext).read_bytes() == thumb.read_bytes()  # made once, shared
    store.remove(img.sha256, img.ext)
    assert not store.has(img.sha256, img.ext)
    assert stored(kind, s, "images") == set() and stored(kind, s, "thumbs") == set()
    missing = store.path("00" * 32, "png")
    assert not missing.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_run_folders_push_mirror_pull_and_fetch_by_ref(kind, tmp_path, request):
    s = settings_of(kind, tmp_path, request)
    storage = open_storage(s)
    work = tmp_path / "work" / "checkpoints"  # a worker's own folder (not the store's)
    for step in (1, 2):
        (work / f"step-{step}" / "adapter").mkdir(parents=True)
        (work / f"step-{step}" / "adapter" / "w.bin").write_bytes(b"w" * step)
        (work / f"step-{step}" / "trainer_state.pt").write_bytes(b"s" * step)
    storage.push_dir("runs/7/checkpoints", work, mirror=True, last="trainer_state.pt")
    assert stored(kind, s, "runs/7") == {f"runs/7/checkpoints/step-{i}/{f}" for i in (1, 2)
                                         for f in ("adapter/w.bin", "trainer_state.pt")}
    import shutil

    shutil.rmtree(work / "step-1")  # pruned: mirror deletes it from the store too
    storage.push_dir("runs/7/checkpoints", work, mirror=True)
    assert {k.split("/")[3] for k in stored(kind, s, "runs/7")} == {"step-2"}
    dest = tmp_path / "elsewhere"
    storage.pull_dir("runs/7/checkpoints", dest)
    assert (dest / "step-2" / "adapter" / "w.bin").read_bytes() == b"ww"
    ref = storage.ref("runs/7/checkpoints/step-2/adapter")
    assert ref.startswith("s3://" if kind == "s3" else "/")
    reader = open_storage(Settings(data_dir=tmp_path / "reader", storage_url=s.storage_url))
    assert (reader.fetch_dir(ref) / "w.bin").read_bytes() == b"ww"


def test_storage_url_forms(tmp_path):
    assert isinstance(open_storage(Settings(data_dir=tmp_path)), LocalStorage)
    assert open_storage(Settings(data_dir=tmp_path, storage_url=f"file://{tmp_path}/objs")).root == tmp_path / "objs"
    with pytest.raises(ValueError, match="STUDIO_STORAGE_URL"):
        open_storage(Settings(data_dir=tmp_path, storage_url="gs://bucket"))
    with pytest.raises(ValueError, match="no bucket"):
        S3Storage("s3://", tmp_path)


def _app(settings: Settings):
    from backend.auth import bootstrap_admin
    from backend.db import migrate, session_scope
    from backend.main import create_app

    migrate(settings.resolved_database_url())
    app = create_app(settings)
    with session_scope(app.state.sessionmaker) as s:
        token = bootstrap_admin(s, settings.data_dir)
    return app, token


@pytest.mark.parametrize("kind", KINDS)
def test_api_upload_file_and_thumbnail_through_the_store(kind, tmp_path, request):
    db = f"sqlite:///{tmp_path / 'studio.db'}"
    s = settings_of(kind, tmp_path, request, "api", db)
    app, token = _app(s)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        pid = c.post("/api/projects", json={"name": "p"}).json()["id"]
        data = [image_bytes(30 + i, 20) for i in range(3)]
        r = c.post(f"/api/projects/{pid}/images", files=[("files", (f"{i}.png", d, "image/png")) for i, d in enumerate(data)])
        assert r.status_code == 201, r.text
        assert len(stored(kind, s, "images")) == 3
        ids = [im["id"] for im in c.get(f"/api/projects/{pid}/images").json()["items"]]
    app.state.engine.dispose()
    # a second API process with nothing in its data directory serves the same bytes from the store
    s2 = Settings(data_dir=tmp_path / "api2", storage_url=s.storage_url or str(s.data_dir), database_url=db)
    app2, token2 = _app(s2)
    with TestClient(app2) as c:
        c.headers["Authorization"] = f"Bearer {token2}"
        got = sorted(c.get(f"/api/images/{i}/file").content for i in ids)
        assert got == sorted(data)
        t = c.get(f"/api/images/{ids[0]}/thumbnail")
        assert t.status_code == 200 and t.content[:2] == b"\xff\xd8"
    app2.state.engine.dispose()
    assert len(stored(kind, s, "thumbs")) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_failed_import_leaves_no_object_behind(kind, tmp_path, request):
    from pathlib import Path

    from backend.db import make_engine, make_sessionmaker, migrate
    from backend.importer import commit_dataset, parse, source_from_path
    from backend.models import Image, Project

    db = f"sqlite:///{tmp_path / 'studio.db'}"
    s = settings_of(kind, tmp_path, request, "data", db)
    migrate(db)
    sm = make_sessionmaker(make_engine(db))
    with sm() as session:
        p = Project(name="p")
        session.add(p)
        session.commit()
        ds = parse("supertuxkart", source_from_path(Path(__file__).parents[1] / "data" / "stk", s), s)
        calls = []

        def progress(_n):  # the store has written two images when the import fails
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("disk full")

        with pytest.raises(RuntimeError, match="disk full"):
            commit_dataset(session, image_store(s), p.id, ds, "supertuxkart", progress)
        assert session.query(Image).count() == 0
    assert len(calls) == 2 and stored(kind, s, "images") == set()
