"""Projects and members: membership scoping (404 for non-members), roles (403 for viewers)."""
from __future__ import annotations

from tests.api.conftest import image_bytes


def test_create_read_patch_project(client, project):
    assert project["role"] == "admin"
    assert [(l["name"], l["color"], l["hotkey"]) for l in project["labels"]] == [
        ("kart", "#ff0000", "1"), ("banana", "#e6194b", "b")]
    assert project["image_count"] == 0 and project["counts"] == {
        "unlabeled": 0, "in_review": 0, "accepted": 0, "rejected": 0}
    pid = project["id"]
    r = client.patch(f"/api/projects/{pid}", json={"name": " renamed ", "description": "d"})
    assert r.status_code == 200 and r.json()["name"] == "renamed" and r.json()["description"] == "d"
    assert client.patch(f"/api/projects/{pid}", json={"name": ""}).status_code == 422
    assert client.patch(f"/api/projects/{pid}", json={"name": None}).status_code == 422
    assert client.patch(f"/api/projects/{pid}", json={"nmae": "typo"}).status_code == 422
    members = client.get(f"/api/projects/{pid}/members").json()
    assert members == [{"user_id": 1, "username": "admin", "role": "admin"}]


def test_project_counts_per_status(client, project, upload):
    pid = project["id"]
    ids = [i["id"] for i in upload(pid, {f"{n}.png": image_bytes(8 + n, 8) for n in range(3)}).json()["images"]]
    client.post(f"/api/images/{ids[0]}/status", json={"status": "in_review"})
    d = client.get(f"/api/projects/{pid}").json()
    assert d["image_count"] == 3 and d["counts"]["unlabeled"] == 2 and d["counts"]["in_review"] == 1


def test_duplicate_labels_in_create_are_409(client):
    r = client.post("/api/projects", json={"name": "p", "labels": [{"name": "kart"}, {"name": "Kart"}]})
    assert r.status_code == 409 and "Kart" in r.json()["detail"]
    assert client.get("/api/projects").json() == []  # nothing half-made


def test_list_shows_only_own_projects(client, project, make_user):
    bob = make_user("bob")
    assert client.get("/api/projects", headers=bob).json() == []
    r = client.post("/api/projects", json={"name": "bobs"}, headers=bob)
    assert r.status_code == 201
    assert [p["name"] for p in client.get("/api/projects", headers=bob).json()] == ["bobs"]
    # A platform admin sees every project.
    assert {p["name"] for p in client.get("/api/projects").json()} == {"karts", "bobs"}


def test_non_member_gets_404_everywhere(client, project, make_user, upload):
    pid = project["id"]
    img = upload(pid, {"a.png": image_bytes()}).json()["images"][0]["id"]
    box = client.post(f"/api/images/{img}/boxes", json={"label_id": project["labels"][0]["id"],
                                                         "x1": 1, "y1": 1, "x2": 5, "y2": 5}).json()
    eve = make_user("eve")
    calls = [
        ("GET", f"/api/projects/{pid}", None), ("PATCH", f"/api/projects/{pid}", {"name": "x"}),
        ("DELETE", f"/api/projects/{pid}", None), ("GET", f"/api/projects/{pid}/members", None),
        ("GET", f"/api/projects/{pid}/labels", None), ("POST", f"/api/projects/{pid}/labels", {"name": "x"}),
        ("GET", f"/api/projects/{pid}/images", None),
        ("PATCH", f"/api/projects/{pid}/images", {"ids": [img], "split": "train"}),
        ("GET", f"/api/images/{img}", None), ("GET", f"/api/images/{img}/file", None),
        ("GET", f"/api/images/{img}/thumbnail", None), ("PATCH", f"/api/images/{img}", {"split": "x"}),
        ("DELETE", f"/api/images/{img}", None), ("POST", f"/api/images/{img}/status", {"status": "in_review"}),
        ("POST", f"/api/images/{img}/boxes", {"label_id": 1, "x1": 1, "y1": 1, "x2": 2, "y2": 2}),
        ("GET", f"/api/boxes/{box['id']}", None), ("PATCH", f"/api/boxes/{box['id']}", {"version": 1, "x1": 2}),
        ("DELETE", f"/api/boxes/{box['id']}?version=1", None),
    ]
    for method, url, body in calls:
        r = client.request(method, url, json=body, headers=eve)
        assert r.status_code == 404, (method, url, r.text)
        assert "not found" in r.json()["detail"]
    r = client.post(f"/api/projects/{pid}/images", files=[("files", ("b.png", image_bytes()))], headers=eve)
    assert r.status_code == 404
    # Nothing was changed by any of it.
    assert client.get(f"/api/boxes/{box['id']}").json()["version"] == 1
    assert client.get(f"/api/projects/{pid}").json()["image_count"] == 1


def test_viewer_reads_but_cannot_write(client, project, make_user, upload):
    pid = project["id"]
    img = upload(pid, {"a.png": image_bytes()}).json()["images"][0]["id"]
    kart = project["labels"][0]["id"]
    box = client.post(f"/api/images/{img}/boxes", json={"label_id": kart, "x1": 1, "y1": 1, "x2": 5, "y2": 5}).json()
    vic = make_user("vic", pid, "viewer")
    assert client.get(f"/api/projects/{pid}", headers=vic).json()["role"] == "viewer"
    assert client.get(f"/api/projects/{pid}/images", headers=vic).json()["total"] == 1
    assert client.get(f"/api/images/{img}/file", headers=vic).status_code == 200
    writes = [
        ("PATCH", f"/api/projects/{pid}", {"name": "x"}), ("DELETE", f"/api/projects/{pid}", None),
        ("POST", f"/api/projects/{pid}/labels", {"name": "x"}),
        ("PATCH", f"/api/projects/{pid}/images", {"ids": [img], "split": "train"}),
        ("PATCH", f"/api/images/{img}", {"split": "x"}), ("DELETE", f"/api/images/{img}", None),
        ("POST", f"/api/images/{img}/status", {"status": "in_review"}),
        ("POST", f"/api/images/{img}/boxes", {"label_id": kart, "x1": 1, "y1": 1, "x2": 2, "y2": 2}),
        ("PATCH", f"/api/boxes/{box['id']}", {"version": 1, "x1": 2}),
        ("DELETE", f"/api/boxes/{box['id']}?version=1", None),
        ("POST", f"/api/projects/{pid}/members", {"username": "vic", "role": "admin"}),
    ]
    for method, url, body in writes:
        r = client.request(method, url, json=body, headers=vic)
        assert r.status_code == 403, (method, url, r.text)
        assert "viewer" in r.json()["detail"]
    r = client.post(f"/api/projects/{pid}/images", files=[("files", ("b.png", image_bytes()))], headers=vic)
    assert r.status_code == 403
    # An annotator may write boxes but not manage the project.
    ann = make_user("ann", pid, "annotator")
    r = client.patch(f"/api/boxes/{box['id']}", json={"version": 1, "x2": 9}, headers=ann)
    assert r.status_code == 200 and r.json()["version"] == 2
    assert client.patch(f"/api/projects/{pid}", json={"name": "x"}, headers=ann).status_code == 403


def test_members_add_change_remove(client, project, make_user):
    pid = project["id"]
    bob = make_user("bob")
    r = client.post(f"/api/projects/{pid}/members", json={"username": "bob", "role": "annotator"})
    assert r.status_code == 200 and r.json()["role"] == "annotator"
    bob_id = r.json()["user_id"]
    assert client.get(f"/api/projects/{pid}", headers=bob).json()["role"] == "annotator"
    assert client.patch(f"/api/projects/{pid}/members/{bob_id}", json={"role": "admin"}).json()["role"] == "admin"
    # Bob, now a project admin (not a platform admin), manages members; the last admin cannot leave.
    assert client.patch(f"/api/projects/{pid}/members/1", json={"role": "viewer"}, headers=bob).status_code == 200
    r = client.delete(f"/api/projects/{pid}/members/{bob_id}", headers=bob)
    assert r.status_code == 409 and "last admin" in r.json()["detail"]
    assert client.patch(f"/api/projects/{pid}/members/{bob_id}", json={"role": "viewer"}).status_code == 409
    assert client.post(f"/api/projects/{pid}/members", json={"user_id": 1, "role": "admin"}).status_code == 200
    assert client.delete(f"/api/projects/{pid}/members/{bob_id}").status_code == 204
    assert client.get(f"/api/projects/{pid}", headers=bob).status_code == 404
    assert client.delete(f"/api/projects/{pid}/members/{bob_id}").status_code == 404
    # Bad input: unknown user, unknown role, both or neither of user_id / username.
    assert client.post(f"/api/projects/{pid}/members", json={"username": "nobody", "role": "viewer"}).status_code == 404
    r = client.post(f"/api/projects/{pid}/members", json={"user_id": bob_id, "role": "owner"})
    assert r.status_code == 422 and "role" in str(r.json()["detail"])
    assert client.post(f"/api/projects/{pid}/members", json={"role": "viewer"}).status_code == 422


def test_delete_project_removes_its_rows_and_unshared_files(client, app, project, upload):
    from tests.api.conftest import files_under

    pid = project["id"]
    other = client.post("/api/projects", json={"name": "other"}).json()["id"]
    shared, own = image_bytes(10, 10), image_bytes(11, 11)
    upload(pid, {"shared.png": shared, "own.png": own})
    upload(other, {"shared.png": shared})
    assert len([f for f in files_under(app.state.settings.data_dir) if f.startswith("images/")]) == 2
    assert client.delete(f"/api/projects/{pid}").status_code == 204
    assert client.get(f"/api/projects/{pid}").status_code == 404
    left = [f for f in files_under(app.state.settings.data_dir) if f.startswith("images/")]
    assert len(left) == 1  # the file the other project still uses stays
    img = client.get(f"/api/projects/{other}/images").json()["items"][0]["id"]
    assert client.get(f"/api/images/{img}/file").content == shared
