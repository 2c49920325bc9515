"""Bad imports through the API: a 4xx naming the problem, and the database and store unchanged."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
import yaml

from tests.formats.helpers import STK_DATA, coco_files, new_project, png, post_import, snapshot, zip_bytes

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<annotation><filename>a.png</filename><object><name>&lol3;</name></object></annotation>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>a.png</filename><object><name>&xxe;</name>
<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>"""


def with_peak_memory(fn):
    """(fn(), the peak bytes Python allocated while it ran): a refused bomb must not inflate."""
    import tracemalloc

    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _deep(n: int):
    doc: list = []
    for _ in range(n):
        doc = [doc]
    return doc


DEEP = _deep(300)  # json.dumps copes; recursive readers (Pydantic, the JSON column) would not


def coco_with(**changes):
    files = coco_files()
    doc = json.loads(files["annotations.json"])
    for path, value in changes.items():
        *keys, last = path.split(".")
        target = doc
        for k in keys:
            target = target[int(k)] if k.isdigit() else target[k]
        if value is None:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    files["annotations.json"] = json.dumps(doc).encode()
    return files


def yolo_files(label_text: bytes, names=("kart", "banana")):
    return {"data.yaml": yaml.safe_dump({"names": list(names)}).encode(), "images/a.png": png(64, 48),
            "labels/a.txt": label_text}


def raw_zip(names: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in names:
            zf.writestr(zipfile.ZipInfo(n), png(8, 8))
    return buf.getvalue()


def truncated_png() -> bytes:
    data = png(64, 48, 3)
    return data[: len(data) // 2]


def stk_files(mutate):
    info = json.loads((STK_DATA / "cornfield_crossing/17d01_info.json").read_text())
    mutate(info)
    return {"17d01_info.json": json.dumps(info).encode(),
            "17d01_00_im.jpg": (STK_DATA / "cornfield_crossing/17d01_00_im.jpg").read_bytes()}


CASES = {
    # name: (format, files, status, words the message must contain)
    "coco-missing-categories": ("coco", coco_with(categories=None), 422, ["annotations.json", "missing key", "categories"]),
    "coco-annotation-missing-bbox": ("coco", coco_with(**{"annotations.1.bbox": None}), 422, ["annotations[1]", "bbox"]),
    "coco-image-missing-file-name": ("coco", coco_with(**{"images.0.file_name": None}), 422, ["images[0]", "file_name"]),
    "coco-unknown-category": ("coco", coco_with(**{"annotations.0.category_id": 99}), 422, ["annotation id 10", "category_id 99"]),
    "coco-unknown-image-id": ("coco", coco_with(**{"annotations.1.image_id": 42}), 422, ["annotation id 11", "image_id 42"]),
    "coco-negative-size": ("coco", coco_with(**{"annotations.0.bbox": [5, 5, -3, 4]}), 422, ["annotation id 10", "negative size"]),
    "coco-zero-size": ("coco", coco_with(**{"annotations.1.bbox": [5, 5, 0, 4]}), 422, ["annotation id 11", "zero"]),
    "coco-box-outside-image": ("coco", coco_with(**{"annotations.0.bbox": [100, 100, 5, 5]}), 422, ["annotation id 10", "entirely outside"]),
    "coco-bbox-not-numbers": ("coco", coco_with(**{"annotations.0.bbox": ["1", 2, 3, 4]}), 422, ["annotation id 10", "4 numbers"]),
    "coco-non-utf8": ("coco", {**coco_files(), "annotations.json": '{"images": "é"}'.encode("latin-1")}, 422, ["annotations.json", "UTF-8"]),
    "coco-non-json": ("coco", {**coco_files(), "annotations.json": b"images: [1, 2"}, 422, ["annotations.json", "not valid JSON", "line 1"]),
    "coco-image-file-missing": ("coco", {k: v for k, v in coco_files().items() if k != "images/b.png"}, 422, ["image id 2", "b.png", "not in the import"]),
    "coco-declared-size-wrong": ("coco", coco_with(**{"images.1.width": 81}), 422, ["image id 2", "81x60", "80x60"]),
    "coco-duplicate-category-id": ("coco", coco_with(categories=[{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]), 422, ["category id 1", "twice"]),
    "label-empty": ("coco", coco_with(**{"categories.0.name": "  "}), 422, ["category id 1", "empty"]),
    "label-10k-chars": ("coco", coco_with(**{"categories.1.name": "x" * 10_000}), 422, ["category id 2", "10000 characters"]),
    "detjson-label-empty": ("detjson", {"d.json": json.dumps({"image_path": "a.png", "object": {"": [[1, 1, 5, 5]]}}).encode(), "a.png": png()}, 422, ["d.json", "entry 0", "empty"]),
    "voc-billion-laughs": ("voc", {"Annotations/a.xml": BILLION_LAUGHS, "JPEGImages/a.png": png()}, 422, ["Annotations/a.xml", "entities"]),
    "voc-external-entity": ("voc", {"Annotations/a.xml": XXE, "JPEGImages/a.png": png()}, 422, ["Annotations/a.xml", "entities"]),
    "voc-not-xml": ("voc", {"Annotations/a.xml": b"<annotation><filename>", "JPEGImages/a.png": png()}, 422, ["Annotations/a.xml", "not valid XML"]),
    "voc-bndbox-incomplete": ("voc", {"Annotations/a.xml": b"<annotation><filename>a.png</filename><object><name>k</name><bndbox><xmin>1</xmin></bndbox></object></annotation>", "JPEGImages/a.png": png()}, 422, ["object 1", "xmax"]),
    "yolo-wrong-field-count": ("yolo", yolo_files(b"0 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n"), 422, ["labels/a.txt", "line 2", "5 fields", "got 4"]),
    "yolo-polygon-line": ("yolo", yolo_files(b"1 0.1 0.1 0.2 0.1 0.2 0.2\n"), 422, ["labels/a.txt", "line 1", "got 7"]),
    "yolo-not-numbers": ("yolo", yolo_files(b"\n\n0 0.5 abc 0.1 0.1\n"), 422, ["labels/a.txt", "line 3", "numbers"]),
    "yolo-bad-class-id": ("yolo", yolo_files(b"2 0.5 0.5 0.1 0.1\n"), 422, ["labels/a.txt", "line 1", "class id 2"]),
    "yolo-no-data-yaml": ("yolo", {"images/a.png": png(), "labels/a.txt": b""}, 422, ["data.yaml"]),
    "yolo-names-missing": ("yolo", {**yolo_files(b""), "data.yaml": b"nc: 2\n"}, 422, ["data.yaml", "names"]),
    "stk-bad-detection": ("supertuxkart", stk_files(lambda i: i["detections"][0].append([1, 2, 3])), 422, ["17d01_info.json", "detection 4"]),
    "stk-unknown-kart-id": ("supertuxkart", stk_files(lambda i: i["detections"][0].append([1, 30, 1, 1, 50, 50])), 422, ["detection 4", "kart id 30"]),
    "truncated-image": ("coco", {**coco_files(), "images/b.png": truncated_png()}, 422, ["images/b.png", "not a readable image"]),
    "not-an-image": ("coco", {**coco_files(), "images/a.png": b"hello, I am text"}, 422, ["images/a.png", "not a readable image"]),
    "unknown-format": ("pascal", coco_files(), 422, ["unknown import format", "pascal"]),
    # issue 11: nesting deep enough to overflow recursive code is refused naming the file; NUL too
    "coco-deeply-nested": ("coco", coco_with(info=DEEP), 422, ["annotations.json", "nested deeper than"]),
    "coco-nested-past-the-parser": ("coco", {**coco_files(), "annotations.json": b"[" * 100_000 + b"]" * 100_000}, 422, ["annotations.json", "nested deeper than"]),
    "coco-nul-in-label": ("coco", coco_with(**{"categories.0.name": "ka\x00rt"}), 422, ["annotations.json", "NUL"]),
    "detjson-deeply-nested": ("detjson", {"d.json": json.dumps({"image_path": "a.png", "object": {}, "x": DEEP}).encode(), "a.png": png()}, 422, ["d.json", "nested deeper than"]),
    "detjson-jsonl-deeply-nested": ("detjson", {"d.jsonl": json.dumps({"image_path": "a.png", "x": DEEP}).encode() + b"\n", "a.png": png()}, 422, ["d.jsonl", "line 1", "nested deeper than"]),
    "stk-deeply-nested": ("supertuxkart", stk_files(lambda i: i.update(extra=DEEP)), 422, ["17d01_info.json", "nested deeper than"]),
    "yolo-deeply-nested-yaml": ("yolo", {**yolo_files(b""), "data.yaml": b"names: " + b"[" * 5000 + b"]" * 5000}, 422, ["data.yaml", "nested deeper than"]),
    "yolo-yaml-nested-past-the-limit": ("yolo", {**yolo_files(b""), "data.yaml": b"names: [kart]\nx: " + b"[" * 150 + b"]" * 150}, 422, ["data.yaml", "nested deeper than 100"]),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_import_is_rejected_and_changes_nothing(client, app, case):
    fmt, files, status, words = CASES[case]
    pid = new_project(client)
    before = snapshot(app)
    r = post_import(client, pid, fmt, files)
    assert r.status_code == status, r.text
    for w in words:
        assert w in r.json()["detail"], (w, r.json()["detail"])
    assert snapshot(app) == before
    assert client.get("/api/health").status_code == 200


@pytest.mark.parametrize("member,word", [("../evil.png", "outside the archive"), ("/etc/evil.png", "absolute path"),
                                         ("C:/evil.png", "absolute path")])
def test_zip_slip_is_rejected(client, app, member, word):
    pid = new_project(client)
    before = snapshot(app)
    r = client.post(f"/api/projects/{pid}/imports", data={"format": "coco"},
                    files=[("files", ("x.zip", raw_zip(["annotations.json", member]), "application/zip"))])
    assert r.status_code == 422 and word in r.json()["detail"] and "evil.png" in r.json()["detail"]
    assert snapshot(app) == before


def test_uploaded_file_names_with_dotdot_are_rejected(client, app):
    pid = new_project(client)
    before = snapshot(app)
    files = coco_files()
    files["../a.png"] = files.pop("images/a.png")
    r = post_import(client, pid, "coco", files, as_zip=False)
    assert r.status_code == 422 and "../a.png" in r.json()["detail"]
    assert snapshot(app) == before


def test_duplicate_file_names_already_in_project_conflict(client, app):
    pid = new_project(client)
    assert post_import(client, pid, "coco", coco_files()).status_code == 200
    before = snapshot(app)
    files = coco_files()
    files["images/a.png"] = png(64, 48, 9)  # other bytes, same names: still a conflict on the names
    r = post_import(client, pid, "coco", files)
    assert r.status_code == 409 and "a.png" in r.json()["detail"] and "b.png" in r.json()["detail"]
    assert snapshot(app) == before


def test_failed_transaction_removes_the_files_it_wrote(app, client):
    """A database error after the files were stored (here a real unique violation) undoes both."""
    from backend.errors import Conflict
    from backend.formats.base import MemorySource
    from backend.importer import commit_dataset, parse

    pid = new_project(client)
    before = snapshot(app)
    ds = parse("coco", MemorySource(coco_files()), app.state.settings)
    ds.images[1].file_name = ds.images[0].file_name  # bypass the parse-time duplicate check
    with app.state.sessionmaker() as s, pytest.raises(Conflict, match="conflicts"):
        commit_dataset(s, app.state.store, pid, ds, "coco")
    assert snapshot(app) == before


def test_viewer_cannot_import_and_outsider_gets_404(client, app):
    pid = new_project(client)
    uid = client.post("/api/users", json={"username": "vera"}).json()["id"]
    tok = client.post(f"/api/users/{uid}/tokens", json={"name": "t"}).json()["token"]
    parts = [("files", ("u.zip", zip_bytes(coco_files()), "application/zip"))]
    h = {"Authorization": f"Bearer {tok}"}
    assert client.post(f"/api/projects/{pid}/imports", data={"format": "coco"}, files=parts, headers=h).status_code == 404
    client.post(f"/api/projects/{pid}/members", json={"user_id": uid, "role": "viewer"})
    r = client.post(f"/api/projects/{pid}/imports", data={"format": "coco"}, files=parts, headers=h)
    assert r.status_code == 403 and "annotator" in r.json()["detail"]
    client.patch(f"/api/projects/{pid}/members/{uid}", json={"role": "annotator"})
    assert client.post(f"/api/projects/{pid}/imports", data={"format": "coco"}, files=parts, headers=h).status_code == 200


def deflated_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, b in files.items():
            zf.writestr(n, b)
    return buf.getvalue()


@pytest.mark.parametrize("route", ["imports", "images"])
def test_zip_bomb_member_is_refused_unread_and_memory_stays_flat(client, app, route):
    """A ~100 KB zip whose member inflates to 48 MB of zeros: 413 naming the member and the ratio,
    nothing written, and the server's peak allocation during the request far below the member."""
    pid = new_project(client)
    big = 48 * 1024 * 1024  # under the 64 MB per-file cap: the ratio refuses it
    data = deflated_zip({**coco_files(), "images/zeros.png": bytes(big)})
    assert len(data) < 1024 * 1024
    before = snapshot(app)
    files = [("files", ("bomb.zip", data, "application/zip"))]
    r, peak = with_peak_memory(lambda: client.post(f"/api/projects/{pid}/imports", data={"format": "coco"}, files=files)
                               if route == "imports" else client.post(f"/api/projects/{pid}/images", files=files))
    assert r.status_code == 413, r.text
    assert "images/zeros.png" in r.json()["detail"] and "zip bomb" in r.json()["detail"]
    assert peak < big // 8, f"peak {peak} bytes while refusing a {big}-byte member"
    assert snapshot(app) == before
    assert client.get("/api/health").status_code == 200


def test_non_image_zip_members_are_never_inflated(client, app):
    """An image upload skips non-image members by name, without reading them (a 96 MB .bin of
    zeros costs nothing); the images beside it are imported."""
    pid = new_project(client)
    data = deflated_zip({"a.png": png(), "notes.bin": bytes(96 * 1024 * 1024)})
    r, peak = with_peak_memory(
        lambda: client.post(f"/api/projects/{pid}/images", files=[("files", ("x.zip", data, "application/zip"))]))
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 1 and r.json()["skipped"] == ["x.zip:notes.bin"]
    assert peak < 12 * 1024 * 1024


def test_zip_member_over_the_per_file_cap_is_refused(client, app, settings):
    pid = new_project(client)
    app.state.settings.max_upload_bytes = 1000
    before = snapshot(app)
    data = deflated_zip({"a.png": png(), "b.png": bytes(5000)})
    r = client.post(f"/api/projects/{pid}/images", files=[("files", ("x.zip", data, "application/zip"))])
    assert r.status_code == 413 and "b.png" in r.json()["detail"] and "1000 bytes per file" in r.json()["detail"]
    assert snapshot(app) == before


def test_zip_member_larger_than_its_header_is_refused(client, app):
    """A header that understates the size cannot make the server inflate past it."""
    pid = new_project(client)
    data = bytearray(deflated_zip({"a.png": png(64, 48, 1), "b.png": png(64, 48, 2)}))
    # Patch b.png's declared size (local header and central directory) to 10 bytes.
    real = len(png(64, 48, 2))
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(sig, data.find(sig) + 1)  # the second entry: b.png
        assert int.from_bytes(data[pos + off:pos + off + 4], "little") == real
        data[pos + off:pos + off + 4] = (10).to_bytes(4, "little")
    before = snapshot(app)
    r = client.post(f"/api/projects/{pid}/images", files=[("files", ("x.zip", bytes(data), "application/zip"))])
    assert r.status_code == 422 and "b.png" in r.json()["detail"], r.text
    assert snapshot(app) == before
