"""Test data made in code: small distinct images, COCO / YOLO / VOC files, zips, state snapshots."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from PIL import Image as PILImage

REPO = Path(__file__).resolve().parents[2]
STK_DATA = REPO / "tests" / "data" / "stk"
SHARED_STK = REPO.parent / "shared" / "supertuxkart"


def png(w: int = 64, h: int = 48, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (w, h), (seed * 37 % 256, seed * 91 % 256, seed * 13 % 256)).save(buf, "PNG")
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, b in files.items():
            zf.writestr(n, b)
    return buf.getvalue()


def coco_files(anns: list | None = None, *, cats=None, images=None, json_name="annotations.json") -> dict:
    """Two images (a.png 64x48, b.png 80x60) and two boxes unless told otherwise."""
    images = images if images is not None else [
        {"id": 1, "file_name": "a.png", "width": 64, "height": 48},
        {"id": 2, "file_name": "b.png", "width": 80, "height": 60},
    ]
    cats = cats if cats is not None else [{"id": 1, "name": "kart"}, {"id": 2, "name": "banana"}]
    anns = anns if anns is not None else [
        {"id": 10, "image_id": 1, "category_id": 1, "bbox": [1.5, 2.25, 10.125, 20.0]},
        {"id": 11, "image_id": 2, "category_id": 2, "bbox": [30, 10, 5, 5]},
    ]
    doc = {"images": images, "annotations": anns, "categories": cats}
    return {json_name: json.dumps(doc).encode(), "images/a.png": png(64, 48, 1), "images/b.png": png(80, 60, 2)}


def snapshot(app):
    """(row counts of every studio table, files under the data dir): nothing may change on bad input."""
    from sqlalchemy import func, select

    from backend.models import Box, Image, Label, Project

    with app.state.sessionmaker() as s:
        counts = {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in (Project, Label, Image, Box)}
    root = app.state.settings.data_dir
    return counts, sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


def new_project(client, name: str = "p") -> int:
    r = client.post("/api/projects", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def post_import(client, pid: int, fmt: str, files: dict[str, bytes], as_zip: bool = True):
    if as_zip:
        parts = [("files", ("upload.zip", zip_bytes(files), "application/zip"))]
    else:
        parts = [("files", (n, b, "application/octet-stream")) for n, b in files.items()]
    return client.post(f"/api/projects/{pid}/imports", data={"format": fmt}, files=parts)


def boxes_by_image(app, pid: int) -> dict[str, list[tuple]]:
    """{file_name: sorted [(label, x1, y1, x2, y2)]} of a project, read from the database."""
    from sqlalchemy import select

    from backend.models import Box, Image, Label

    out: dict[str, list] = {}
    with app.state.sessionmaker() as s:
        for (fn,) in s.execute(select(Image.file_name).where(Image.project_id == pid)):
            out[fn] = []
        q = select(Image.file_name, Label.name, Box.x1, Box.y1, Box.x2, Box.y2).join(
            Image, Image.id == Box.image_id).join(Label, Label.id == Box.label_id).where(Image.project_id == pid)
        for fn, lab, *c in s.execute(q):
            out[fn].append((lab, *c))
    return {k: sorted(v) for k, v in out.items()}
