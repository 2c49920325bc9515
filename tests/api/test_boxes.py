"""Boxes: create / move / resize / relabel / delete with optimistic locking and checked coordinates."""
from __future__ import annotations

import json

import pytest

from tests.api.conftest import image_bytes


@pytest.fixture
def img(client, project, upload) -> dict:
    i = upload(project["id"], {"a.png": image_bytes(640, 400)}).json()["images"][0]
    return {"id": i["id"], "kart": project["labels"][0]["id"], "banana": project["labels"][1]["id"]}


def _box(client, img, **kw):
    body = {"label_id": img["kart"], "x1": 10, "y1": 20, "x2": 110.5, "y2": 220, **kw}
    return client.post(f"/api/images/{img['id']}/boxes", json=body)


def test_box_lifecycle(client, img):
    r = _box(client, img)
    assert r.status_code == 201, r.text
    b = r.json()
    assert (b["x2"], b["source"], b["version"], b["image_id"], b["updated_by_id"]) == (110.5, "human", 1, img["id"], 1)
    # move
    r = client.patch(f"/api/boxes/{b['id']}", json={"version": 1, "x1": 20, "x2": 120.5})
    assert r.status_code == 200 and r.json()["version"] == 2 and (r.json()["x1"], r.json()["y1"]) == (20, 20)
    # resize to the image's edge
    r = client.patch(f"/api/boxes/{b['id']}", json={"version": 2, "x2": 640, "y2": 400})
    assert r.status_code == 200 and r.json()["version"] == 3
    # relabel
    r = client.patch(f"/api/boxes/{b['id']}", json={"version": 3, "label_id": img["banana"]})
    assert r.json()["label_id"] == img["banana"] and r.json()["version"] == 4
    detail = client.get(f"/api/images/{img['id']}").json()
    assert [(x["id"], x["version"], x["x2"]) for x in detail["boxes"]] == [(b["id"], 4, 640)]
    assert client.delete(f"/api/boxes/{b['id']}?version=4").status_code == 204
    assert client.get(f"/api/boxes/{b['id']}").status_code == 404
    assert client.get(f"/api/images/{img['id']}").json()["boxes"] == []


def test_stale_version_is_409_with_the_current_box(client, img, make_user, project):
    b = _box(client, img).json()
    ann = make_user("ann", project["id"], "annotator")
    # Two annotators read version 1; the first write wins, the second gets 409 and the current box.
    assert client.patch(f"/api/boxes/{b['id']}", json={"version": 1, "x1": 50}, headers=ann).status_code == 200
    r = client.patch(f"/api/boxes/{b['id']}", json={"version": 1, "x1": 70})
    assert r.status_code == 409
    body = r.json()
    assert "version 2" in body["detail"] and "version 1" in body["detail"]
    assert body["current"]["x1"] == 50 and body["current"]["version"] == 2 and body["current"]["id"] == b["id"]
    r = client.delete(f"/api/boxes/{b['id']}?version=1")
    assert r.status_code == 409 and r.json()["current"]["version"] == 2
    assert client.get(f"/api/boxes/{b['id']}").json()["x1"] == 50  # the stale writes changed nothing
    r = client.patch(f"/api/boxes/{b['id']}", json={"x1": 70})
    assert r.status_code == 422 and any("version" in e["loc"] for e in r.json()["detail"])
    assert client.delete(f"/api/boxes/{b['id']}").status_code == 422  # version is required


@pytest.mark.parametrize("coords,field", [
    ({"x1": -1}, "x1"), ({"y1": -0.5}, "y1"), ({"x2": 641}, "x2"), ({"y2": 400.01}, "y2"),
    ({"x2": 10}, "x2"), ({"x2": 5}, "x2"), ({"y2": 20}, "y2"), ({"y1": 300, "y2": 200}, "y2"),
])
def test_bad_coordinates_are_422_naming_the_field(client, img, state, coords, field):
    before = state()
    r = _box(client, img, **coords)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(f"{field}:")
    b = _box(client, img).json()
    r = client.patch(f"/api/boxes/{b['id']}", json={"version": 1, **coords})
    assert r.status_code == 422 and r.json()["detail"].startswith(f"{field}:")
    assert client.get(f"/api/boxes/{b['id']}").json()["version"] == 1
    assert state()[0][1] == before[0][1] + 1


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_coordinates_are_422(client, img, raw):
    body = f'{{"label_id": {img["kart"]}, "x1": {raw}, "y1": 1, "x2": 5, "y2": 5}}'
    r = client.post(f"/api/images/{img['id']}/boxes", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert any("x1" in e["loc"] for e in r.json()["detail"])


@pytest.mark.parametrize("body,field", [({"x1": "left"}, "x1"), ({"label_id": None}, "label_id"),
                                        ({"score": 1.0}, "score")])
def test_malformed_box_is_422(client, img, body, field):
    r = _box(client, img, **body)
    assert r.status_code == 422 and any(field in e["loc"] for e in r.json()["detail"])


def test_label_of_another_project_is_422(client, img):
    other = client.post("/api/projects", json={"name": "o", "labels": [{"name": "x"}]}).json()["labels"][0]["id"]
    r = _box(client, img, label_id=other)
    assert r.status_code == 422 and "label_id" in r.json()["detail"]
    assert _box(client, img, label_id=99999).status_code == 422
    b = _box(client, img).json()
    r = client.patch(f"/api/boxes/{b['id']}", json={"version": 1, "label_id": other})
    assert r.status_code == 422 and "label_id" in r.json()["detail"]
    r = client.patch(f"/api/boxes/{b['id']}", json={"version": 1, "label_id": None})
    assert r.status_code == 422


def test_box_on_missing_image_is_404(client, img):
    assert client.post("/api/images/99999/boxes", json={"label_id": img["kart"], "x1": 1, "y1": 1,
                                                        "x2": 2, "y2": 2}).status_code == 404
    assert client.patch("/api/boxes/99999", json={"version": 1, "x1": 1}).status_code == 404


def test_list_and_detail_show_boxes_in_order(client, img, project):
    ids = [_box(client, img, x1=n).json()["id"] for n in range(3)]
    page = client.get(f"/api/projects/{project['id']}/images").json()
    assert [b["id"] for b in page["items"][0]["boxes"]] == ids and page["items"][0]["box_count"] == 3
    assert json.loads(client.get(f"/api/images/{img['id']}").text)["boxes"][2]["x1"] == 2


def test_nan_in_an_integer_field_is_422_not_500(client, img):
    body = '{"label_id": NaN, "x1": 1, "y1": 1, "x2": 5, "y2": 5}'
    r = client.post(f"/api/images/{img['id']}/boxes", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and any("label_id" in e["loc"] for e in r.json()["detail"])
