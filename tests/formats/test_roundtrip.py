"""Export then re-import into a new project gives the same boxes, labels and splits (all three writers)."""
from __future__ import annotations

import io
import json
import random
import zipfile

import pytest

from tests.formats.helpers import STK_DATA, boxes_by_image, new_project, png, post_import

SIZES = {"a.png": (64, 48), "sub/b.png": (80, 60), "c.png": (33, 77), "empty.png": (20, 20)}
SPLITS = {"a.png": "train", "sub/b.png": "train", "c.png": "val", "empty.png": "test"}


def source_dataset() -> dict[str, bytes]:
    """A COCO import with awkward float boxes, three labels (one unused), splits, and an image without boxes."""
    rng = random.Random(7)
    images, anns = [], []
    for i, (name, (w, h)) in enumerate(SIZES.items(), 1):
        images.append({"id": i, "file_name": name, "width": w, "height": h, "split": SPLITS[name]})
        for _ in range(0 if name == "empty.png" else 4):
            x1, y1 = rng.uniform(0, w - 2), rng.uniform(0, h - 2)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": rng.choice([1, 2]),
                         "bbox": [x1, y1, rng.uniform(0.5, w - x1), rng.uniform(0.5, h - y1)]})
    cats = [{"id": 1, "name": "kart"}, {"id": 2, "name": "red banana"}, {"id": 3, "name": "unused"}]
    files = {"annotations.json": json.dumps({"images": images, "annotations": anns, "categories": cats}).encode()}
    for i, name in enumerate(SIZES, 1):
        files[f"images/{name}"] = png(*SIZES[name], seed=i)
    return files


def labels_of(client, pid):
    return sorted(lab["name"] for lab in client.get(f"/api/projects/{pid}").json()["labels"])


def shas_of(app, pid):
    from sqlalchemy import select

    from backend.models import Image

    with app.state.sessionmaker() as s:
        return dict(s.execute(select(Image.file_name, Image.sha256).where(Image.project_id == pid)).all())


def splits_of(app, pid):
    from sqlalchemy import select

    from backend.models import Image

    with app.state.sessionmaker() as s:
        return dict(s.execute(select(Image.file_name, Image.split).where(Image.project_id == pid)).all())


# The instruction formats carry the family's 0..1000 grid: half a step of the widest image (80 px).
@pytest.mark.parametrize("fmt,tol", [("coco", 1e-6), ("voc", 1e-6), ("yolo", 1e-6 * 80), ("hf_parquet", 1e-9),
                                     ("labelstudio", 1e-9), ("cvat", 1e-9), ("msswift", 0.5 / 1000 * 80),
                                     ("llamafactory", 0.5 / 1000 * 80)])
def test_export_reimport_gives_the_same_boxes(client, app, fmt, tol):
    src = new_project(client, "src")
    r = post_import(client, src, "coco", source_dataset())
    assert r.status_code == 200, r.text
    assert r.json()["boxes_added"] == 12 and r.json()["images_added"] == 4

    r = client.get(f"/api/projects/{src}/export", params={"format": fmt})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    dst = new_project(client, "dst")
    r2 = client.post(f"/api/projects/{dst}/imports", data={"format": fmt},
                     files=[("files", ("export.zip", r.content, "application/zip"))])
    assert r2.status_code == 200, r2.text
    assert r2.json()["clipped"] == 0 and r2.json()["boxes_added"] == 12

    a, b = boxes_by_image(app, src), boxes_by_image(app, dst)
    assert a.keys() == b.keys() == set(SIZES)
    for name in a:
        assert [x[0] for x in a[name]] == [x[0] for x in b[name]]
        for ba, bb in zip(a[name], b[name]):
            assert bb[1:] == pytest.approx(ba[1:], abs=tol), name
    assert splits_of(app, dst) == SPLITS
    assert shas_of(app, dst) == shas_of(app, src)  # the same image bytes under the same names
    # VOC and Label Studio exports carry no label list
    want = ["kart", "red banana", "unused"] if fmt not in ("voc", "labelstudio") else ["kart", "red banana"]
    assert labels_of(client, dst) == want


def test_export_one_split_and_unknown_format(client, app):
    src = new_project(client, "src")
    assert post_import(client, src, "coco", source_dataset()).status_code == 200
    r = client.get(f"/api/projects/{src}/export", params={"format": "yolo", "split": "train"})
    names = set(zipfile.ZipFile(io.BytesIO(r.content)).namelist())
    assert names == {"data.yaml", "images/train/a.png", "images/train/sub/b.png", "labels/train/a.txt",
                     "labels/train/sub/b.txt", "image_status.csv"}
    r = client.get(f"/api/projects/{src}/export", params={"format": "supertuxkart"})
    assert r.status_code == 422 and "unknown export format" in r.json()["detail"]


def test_supertuxkart_import_keeps_kart_names_and_meta_through_coco(client, app):
    files = {p.relative_to(STK_DATA).as_posix(): p.read_bytes() for p in STK_DATA.rglob("*") if p.is_file()}
    pid = new_project(client, "stk")
    r = client.post(f"/api/projects/{pid}/imports", data={"format": "supertuxkart"},
                    files=[("files", (n, b, "application/octet-stream")) for n, b in files.items()])
    assert r.status_code == 200, r.text
    assert r.json() == {"format": "supertuxkart", "images_read": 3, "images_added": 3, "boxes_added": 6,
                        "labels_created": ["kart"], "labels_matched": [], "boxes_per_label": {"kart": 6},
                        "clipped": 0, "warnings": []}
    from sqlalchemy import select

    from backend.models import Box, Image, ImageStatus

    with app.state.sessionmaker() as s:
        imgs = {i.file_name: i for i in s.scalars(select(Image).where(Image.project_id == pid))}
        assert imgs["hacienda/ba720_00_im.jpg"].status == ImageStatus.unlabeled
        im = imgs["cornfield_crossing/17d01_00_im.jpg"]
        assert im.status == ImageStatus.in_review and im.meta["ego_kart_name"] == "Puffy" and im.meta["race_position"] == 7
        names = sorted(b.attributes["kart_name"] for b in s.scalars(select(Box).where(Box.image_id == im.id)))
        assert names == ["Emule", "Kiki", "Suzanne", "Xue"]
        assert {b.source.value for b in s.scalars(select(Box))} == {"import"}

    exported = client.get(f"/api/projects/{pid}/export", params={"format": "coco"}).content
    dst = new_project(client, "dst")
    assert post_import(client, dst, "coco", dict(_unzip(exported))).status_code == 200
    assert boxes_by_image(app, dst) == boxes_by_image(app, pid)
    with app.state.sessionmaker() as s:
        attrs = sorted(b.attributes["kart_name"] for b in s.scalars(
            select(Box).join(Image).where(Image.project_id == dst, Image.file_name == im.file_name)))
    assert attrs == names  # COCO keeps box attributes


def test_same_bytes_in_two_projects_are_stored_once(client, app):
    p1, p2 = new_project(client, "one"), new_project(client, "two")
    data = source_dataset()
    assert post_import(client, p1, "coco", data).status_code == 200
    n_files = len(list((app.state.settings.data_dir / "images").rglob("*.png")))
    assert post_import(client, p2, "coco", data).status_code == 200
    assert len(list((app.state.settings.data_dir / "images").rglob("*.png"))) == n_files == 4


def _unzip(data: bytes):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for n in zf.namelist():
            yield n, zf.read(n)

