"""Labels: name 1..100 chars after strip and unique per project, colour #rrggbb, one-key hotkey."""
from __future__ import annotations

import pytest

from tests.api.conftest import image_bytes


def test_label_crud(client, project, upload):
    pid = project["id"]
    r = client.post(f"/api/projects/{pid}/labels", json={"name": "  item box ", "color": "#00AA00", "hotkey": "i"})
    assert r.status_code == 201
    lab = r.json()
    assert (lab["name"], lab["color"], lab["hotkey"]) == ("item box", "#00aa00", "i")
    assert [l["name"] for l in client.get(f"/api/projects/{pid}/labels").json()] == ["kart", "banana", "item box"]
    r = client.patch(f"/api/projects/{pid}/labels/{lab['id']}", json={"name": "itembox", "hotkey": None})
    assert r.status_code == 200 and r.json()["name"] == "itembox" and r.json()["hotkey"] is None
    # Renaming to its own name (other case) is fine; to another label's name is not.
    assert client.patch(f"/api/projects/{pid}/labels/{lab['id']}", json={"name": "ItemBox"}).status_code == 200
    r = client.patch(f"/api/projects/{pid}/labels/{lab['id']}", json={"name": "KART"})
    assert r.status_code == 409 and "KART" in r.json()["detail"]
    # Deleting a label deletes its boxes.
    img = upload(pid, {"a.png": image_bytes()}).json()["images"][0]["id"]
    client.post(f"/api/images/{img}/boxes", json={"label_id": lab["id"], "x1": 1, "y1": 1, "x2": 4, "y2": 4})
    assert client.delete(f"/api/projects/{pid}/labels/{lab['id']}").status_code == 204
    assert client.get(f"/api/images/{img}").json()["boxes"] == []
    assert client.delete(f"/api/projects/{pid}/labels/{lab['id']}").status_code == 404


def test_label_of_other_project_is_404(client, project):
    other = client.post("/api/projects", json={"name": "o", "labels": [{"name": "x"}]}).json()
    lid = other["labels"][0]["id"]
    r = client.patch(f"/api/projects/{project['id']}/labels/{lid}", json={"name": "y"})
    assert r.status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 10_000}, "name"),
    ({"name": "x" * 101}, "name"),
    ({}, "name"),
    ({"name": "ok", "color": "red"}, "color"),
    ({"name": "ok", "color": "#12345g"}, "color"),
    ({"name": "ok", "hotkey": "ab"}, "hotkey"),
    ({"name": "ok", "hotkey": " "}, "hotkey"),
    ({"name": "ok", "extra": 1}, "extra"),
])
def test_bad_label_input_is_422_naming_the_field(client, project, body, field):
    r = client.post(f"/api/projects/{project['id']}/labels", json=body)
    assert r.status_code == 422, r.text
    assert any(field in e["loc"] for e in r.json()["detail"])
    assert len(client.get(f"/api/projects/{project['id']}/labels").json()) == 2


def test_label_name_of_exactly_100_chars_is_fine(client, project):
    assert client.post(f"/api/projects/{project['id']}/labels", json={"name": "é" * 100}).status_code == 201


@pytest.mark.parametrize("body,word", [({"name": "Kart"}, "Kart"), ({"name": "new", "hotkey": "1"}, "hotkey")])
def test_duplicate_name_or_hotkey_is_409(client, project, body, word):
    r = client.post(f"/api/projects/{project['id']}/labels", json=body)
    assert r.status_code == 409 and word in r.json()["detail"]


def test_same_label_name_in_two_projects_is_fine(client, project):
    r = client.post("/api/projects", json={"name": "p2", "labels": [{"name": "kart", "hotkey": "1"}]})
    assert r.status_code == 201


def test_422_does_not_echo_a_huge_input(client, project):
    r = client.post(f"/api/projects/{project['id']}/labels", json={"name": "x" * 10_000})
    assert r.status_code == 422 and len(r.content) < 2_000
    assert r.json()["detail"][0]["loc"] == ["body", "name"] and "100" in r.json()["detail"][0]["msg"]
