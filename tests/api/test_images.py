"""Images: upload (files, zip), list with filters and pagination, one image, bytes, thumbnail,
edits, review status, bulk edits, delete."""
from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from tests.api.conftest import files_under, image_bytes
from tests.formats.helpers import zip_bytes


def test_upload_many_and_azip_bytes(client, app, project, upload):
    pid = project["id"]
    r = upload(pid, {"a.png": image_bytes(40, 30), "b.jpg": image_bytes(20, 10, "JPEG")})
    assert r.status_code == 201, r.text
    imgs = r.json()["images"]
    assert [(i["file_name"], i["width"], i["height"], i["status"]) for i in imgs] == [
        ("a.png", 40, 30, "unlabeled"), ("b.jpg", 20, 10, "unlabeled")]
    z = zip_bytes({"frames/c.png": image_bytes(5, 5), "frames/d.webp": image_bytes(6, 6, "WEBP"), "README.txt": b"hi"})
    r = upload(pid, {"batch.zip": z})
    assert r.status_code == 201, r.text
    assert [i["file_name"] for i in r.json()["images"]] == ["frames/c.png", "frames/d.webp"]
    assert r.json()["skipped"] == ["batch.zip:README.txt"]
    # The same bytes under another name are stored once (content-addressed).
    upload(pid, {"a_copy.png": image_bytes(40, 30)})
    assert len([f for f in files_under(app.state.settings.data_dir) if f.startswith("images/")]) == 4


def test_file_and_thumbnail(client, app, project, upload):
    png = image_bytes(600, 300)
    jpg = image_bytes(20, 10, "JPEG")
    ids = [i["id"] for i in upload(project["id"], {"a.png": png, "b.jpg": jpg}).json()["images"]]
    r = client.get(f"/api/images/{ids[0]}/file")
    assert r.status_code == 200 and r.content == png and r.headers["content-type"] == "image/png"
    r = client.get(f"/api/images/{ids[1]}/file")
    assert r.content == jpg and r.headers["content-type"] == "image/jpeg"
    r = client.get(f"/api/images/{ids[0]}/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert PILImage.open(io.BytesIO(r.content)).size == (256, 128)
    thumbs = [p for p in (app.state.settings.data_dir / "thumbs").rglob("*.jpg")]
    assert len(thumbs) == 1
    mtime = thumbs[0].stat().st_mtime_ns
    assert client.get(f"/api/images/{ids[0]}/thumbnail").content == r.content
    assert thumbs[0].stat().st_mtime_ns == mtime  # made once, then served from the cache


@pytest.fixture
def grid(client, project, upload):
    """12 images; boxes on some; statuses and splits set; returns (pid, ids, kart id, banana id)."""
    pid = project["id"]
    kart, banana = (l["id"] for l in project["labels"])
    ids = [i["id"] for i in upload(pid, {f"frame_{n:02d}.png": image_bytes(50, 40, color=(n, n, n))
                                         for n in range(12)}).json()["images"]]
    for n, i in enumerate(ids):
        if n % 3 == 0:
            client.post(f"/api/images/{i}/boxes", json={"label_id": kart, "x1": 1, "y1": 2, "x2": 10, "y2": 20})
        if n % 4 == 0:
            client.post(f"/api/images/{i}/boxes", json={"label_id": banana, "x1": 5, "y1": 5, "x2": 6, "y2": 6})
    client.patch(f"/api/projects/{pid}/images", json={"ids": ids[:4], "status": "in_review"})
    client.patch(f"/api/projects/{pid}/images", json={"ids": ids[6:], "split": "val"})
    return pid, ids, kart, banana


def test_list_pages_and_filters(client, grid):
    pid, ids, kart, banana = grid
    url = f"/api/projects/{pid}/images"
    page = client.get(url, params={"limit": 5, "offset": 5}).json()
    assert page["total"] == 12 and page["offset"] == 5 and page["limit"] == 5
    assert [i["id"] for i in page["items"]] == ids[5:10]
    first = client.get(url, params={"limit": 1}).json()["items"][0]
    assert first["box_count"] == 2 and [b["label_id"] for b in first["boxes"]] == [kart, banana]
    assert set(first["boxes"][0]) == {"id", "label_id", "x1", "y1", "x2", "y2"}
    assert first["boxes"][0]["x2"] == 10

    def ids_for(**params):
        body = client.get(url, params={"limit": 500, **params}).json()
        assert body["total"] == len(body["items"])
        return [i["id"] for i in body["items"]]

    assert ids_for(status="in_review") == ids[:4]
    assert ids_for(status="unlabeled") == ids[4:]
    assert ids_for(split="val") == ids[6:]
    assert ids_for(label=kart) == ids[0::3]
    assert ids_for(label="banana") == ids[0::4]
    assert ids_for(label="BANANA", status="in_review") == [ids[0]]
    assert ids_for(has_boxes="true") == sorted(set(ids[0::3]) | set(ids[0::4]))
    assert ids_for(has_boxes="false") == sorted(set(ids) - set(ids[0::3]) - set(ids[0::4]))
    assert ids_for(q="_1") == ids[10:]
    assert ids_for(q="FRAME_0") == ids[:10]
    assert ids_for(q="_0") == ids[:10] and ids_for(q="1.") == [ids[1], ids[11]]  # no letters: plain LIKE
    assert ids_for(q="%") == [] and ids_for(q="_") == ids  # LIKE wildcards are literal
    assert client.get(url, params={"offset": 100}).json()["items"] == []
    assert client.get(url, params={"offset": 100, "q": "frame"}).json()["total"] == 12
    # Keyset paging and skipping the count.
    r = client.get(url, params={"after_id": ids[3], "limit": 2, "with_total": "false"}).json()
    assert [i["id"] for i in r["items"]] == ids[4:6] and r["total"] is None
    assert ids_for(after_id=ids[5], label="kart") == [i for i in ids[0::3] if i > ids[5]]
    assert client.get(url, params={"after_id": -1}).status_code == 422


@pytest.mark.parametrize("params,field", [
    ({"offset": -1}, "offset"), ({"offset": 2**31}, "offset"), ({"offset": 10**30}, "offset"),
    ({"limit": 0}, "limit"), ({"limit": -5}, "limit"), ({"limit": 501}, "limit"), ({"limit": "ten"}, "limit"),
    ({"status": "done"}, "status"), ({"has_boxes": "maybe"}, "has_boxes"),
])
def test_bad_pagination_and_filters_are_422(client, project, params, field):
    r = client.get(f"/api/projects/{project['id']}/images", params=params)
    assert r.status_code == 422, r.text
    assert any(field in e["loc"] for e in r.json()["detail"])


def test_unknown_label_filter_is_422(client, project):
    r = client.get(f"/api/projects/{project['id']}/images", params={"label": "ghost"})
    assert r.status_code == 422 and "ghost" in r.json()["detail"]


def test_read_patch_delete_image(client, app, project, upload):
    pid = project["id"]
    ids = [i["id"] for i in upload(pid, {"a.png": image_bytes(), "b.png": image_bytes(9, 9)}).json()["images"]]
    d = client.get(f"/api/images/{ids[0]}").json()
    assert d["file_name"] == "a.png" and d["meta"] == {} and d["boxes"] == [] and d["reviewed_by"] is None
    r = client.patch(f"/api/images/{ids[0]}", json={"split": "train", "meta": {"track": "lighthouse"}})
    assert r.status_code == 200 and r.json()["split"] == "train" and r.json()["meta"] == {"track": "lighthouse"}
    r = client.patch(f"/api/images/{ids[0]}", json={"meta": {"track": "zengarden"}})
    assert r.json()["split"] == "train" and r.json()["meta"] == {"track": "zengarden"}
    assert client.patch(f"/api/images/{ids[0]}", json={"split": None}).json()["split"] is None
    assert client.patch(f"/api/images/{ids[0]}", json={"split": "x" * 33}).status_code == 422
    assert client.patch(f"/api/images/{ids[0]}", json={"meta": None}).status_code == 422
    assert client.get("/api/images/999999").status_code == 404
    before = files_under(app.state.settings.data_dir)
    assert client.delete(f"/api/images/{ids[0]}").status_code == 204
    assert client.get(f"/api/images/{ids[0]}").status_code == 404
    assert len(files_under(app.state.settings.data_dir)) == len(before) - 1
    assert client.get(f"/api/projects/{pid}/images").json()["total"] == 1


def test_review_status_workflow(client, project, upload, make_user):
    pid = project["id"]
    img = upload(pid, {"a.png": image_bytes()}).json()["images"][0]["id"]
    ann = make_user("ann", pid, "annotator")
    r = client.post(f"/api/images/{img}/status", json={"status": "accepted"})
    assert r.status_code == 409
    assert "'unlabeled'" in r.json()["detail"] and "'accepted'" in r.json()["detail"]
    r = client.post(f"/api/images/{img}/status", json={"status": "in_review"}, headers=ann)
    assert r.status_code == 200 and r.json()["status"] == "in_review" and r.json()["reviewed_by"] == "ann"
    r = client.post(f"/api/images/{img}/status", json={"status": "accepted"})
    body = r.json()
    assert body["status"] == "accepted" and body["reviewed_by"] == "admin" and body["reviewed_at"]
    assert client.post(f"/api/images/{img}/status", json={"status": "rejected"}).status_code == 409
    assert client.post(f"/api/images/{img}/status", json={"status": "in_review"}).json()["status"] == "in_review"
    assert client.post(f"/api/images/{img}/status", json={"status": "rejected"}).json()["status"] == "rejected"
    assert client.post(f"/api/images/{img}/status", json={"status": "unlabeled"}).status_code == 409
    assert client.post(f"/api/images/{img}/status", json={"status": "finished"}).status_code == 422


def test_bulk_patch_is_all_or_nothing(client, project, upload):
    pid = project["id"]
    ids = [i["id"] for i in upload(pid, {f"{n}.png": image_bytes(8, 8 + n) for n in range(4)}).json()["images"]]
    client.post(f"/api/images/{ids[0]}/status", json={"status": "in_review"})
    r = client.patch(f"/api/projects/{pid}/images", json={"ids": ids, "status": "in_review"})
    assert r.status_code == 409 and f"image {ids[0]}" in r.json()["detail"]
    listed = client.get(f"/api/projects/{pid}/images", params={"status": "in_review"}).json()
    assert listed["total"] == 1  # none of the others moved
    r = client.patch(f"/api/projects/{pid}/images", json={"ids": ids[1:], "status": "in_review", "split": "test"})
    assert r.status_code == 200 and r.json()["updated"] == 3
    assert client.get(f"/api/projects/{pid}/images", params={"split": "test"}).json()["total"] == 3
    other = client.post("/api/projects", json={"name": "o"}).json()["id"]
    oid = upload(other, {"x.png": image_bytes()}).json()["images"][0]["id"]
    r = client.patch(f"/api/projects/{pid}/images", json={"ids": [ids[0], oid], "split": "train"})
    assert r.status_code == 404 and str(oid) in r.json()["detail"]
    assert client.patch(f"/api/projects/{pid}/images", json={"ids": []}).status_code == 422
    assert client.patch(f"/api/projects/{pid}/images", json={"ids": ids}).status_code == 422


def test_grid_page_is_the_documented_shape_in_one_query(client, app, grid):
    """The page is built as JSON directly: it must still be exactly ImagePage, and its cost must not
    grow with the page (one statement for page, boxes and count; auth and project access besides)."""
    from sqlalchemy import event

    from backend.schemas import BoxCompact, ImageItem, ImagePage

    pid, ids, kart, banana = grid
    statements: list[str] = []
    engine = app.state.engine
    listen = lambda conn, cur, stmt, *a: statements.append(stmt)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        r = client.get(f"/api/projects/{pid}/images", params={"limit": 50})
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert ImagePage.model_validate(body).model_dump(mode="json") == body
    assert set(body) == set(ImagePage.model_fields)
    assert all(set(i) == set(ImageItem.model_fields) for i in body["items"])
    assert all(set(b) == set(BoxCompact.model_fields) for i in body["items"] for b in i["boxes"])
    assert [i["box_count"] for i in body["items"]] == [len(i["boxes"]) for i in body["items"]]
    assert sum(i["box_count"] for i in body["items"]) == 4 + 3  # kart on 0,3,6,9; banana on 0,4,8
    assert body["items"][0]["status"] == "in_review" and body["items"][6]["split"] == "val"
    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(selects) == 3, selects  # the token's user, the project, the page
