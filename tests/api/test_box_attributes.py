"""The editor's attributes panel: a box's attributes are replaced whole through PATCH (versioned like
every box write), flat values only, with a clear 422 otherwise; image meta through PATCH /images."""
from __future__ import annotations

from tests.api.conftest import image_bytes


def test_box_attributes_patch(client, project, upload):
    pid = project["id"]
    iid = upload(pid, {"a.png": image_bytes(40, 30)}).json()["images"][0]["id"]
    lid = project["labels"][0]["id"]
    b = client.post(f"/api/images/{iid}/boxes", json={"label_id": lid, "x1": 1, "y1": 1, "x2": 9, "y2": 9}).json()
    r = client.patch(f"/api/boxes/{b['id']}", json={"version": b["version"], "attributes": {"kart": "tux", "visible": True}})
    assert r.status_code == 200, r.text
    assert r.json()["attributes"] == {"kart": "tux", "visible": True} and r.json()["version"] == b["version"] + 1
    assert (r.json()["x1"], r.json()["x2"]) == (1, 9)
    # a stale version is refused like any box write
    assert client.patch(f"/api/boxes/{b['id']}", json={"version": b["version"], "attributes": {}}).status_code == 409
    r = client.patch(f"/api/boxes/{b['id']}", json={"version": b["version"] + 1, "attributes": {"k": {"nested": 1}}})
    assert r.status_code == 422 and "attributes" in r.text
    r = client.patch(f"/api/boxes/{b['id']}", json={"version": b["version"] + 1, "attributes": None})
    assert r.status_code == 422 and "attributes" in r.json()["detail"]
    r = client.patch(f"/api/images/{iid}", json={"meta": {"race_id": "r1", "track": "lighthouse"}})
    assert r.status_code == 200 and r.json()["meta"] == {"race_id": "r1", "track": "lighthouse"}
