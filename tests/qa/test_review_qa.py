"""QA review at scale: pairs grouped per image, filters (image, file name, template, staleness),
placeholders validated on save, stale pairs marked after a box changes and regenerated keeping the
pairs people edited."""
from __future__ import annotations

from tests.api.conftest import image_bytes


def _setup(client) -> tuple[int, int, list[int]]:
    p = client.post("/api/projects", json={"name": "qa", "labels": [{"name": "kart"}]}).json()
    pid, kart = p["id"], p["labels"][0]["id"]
    files = [("files", (f"f{i}.png", image_bytes(200, 100, color=(10 * i, 40, 90)), "image/png")) for i in range(3)]
    ids = [im["id"] for im in client.post(f"/api/projects/{pid}/images", files=files).json()["images"]]
    for iid in ids:
        for x in (10, 120):
            r = client.post(f"/api/images/{iid}/boxes", json={"label_id": kart, "x1": x, "y1": 20, "x2": x + 50, "y2": 80})
            assert r.status_code == 201
    r = client.post(f"/api/projects/{pid}/qa/generate", json={"families": ["counting", "detection", "spatial"]})
    assert r.status_code == 200 and r.json()["total"] > 0, r.text
    return pid, kart, ids


def _list(client, pid, **q) -> dict:
    r = client.get(f"/api/projects/{pid}/qa", params={"limit": 500, **q})
    assert r.status_code == 200, r.text
    return r.json()


def test_grouped_filters_and_placeholders(client):
    pid, _, ids = _setup(client)
    page = _list(client, pid)
    order = [it["image_id"] for it in page["items"]]
    assert order == sorted(order)  # grouped per image
    assert not any(it["stale"] for it in page["items"])
    one = _list(client, pid, file="f1.")
    assert one["total"] > 0 and {it["file_name"] for it in one["items"]} == {"f1.png"}
    tid = page["items"][0]["template_id"]
    assert {it["template_id"] for it in _list(client, pid, template_id=tid)["items"]} == {tid}
    # a placeholder naming no box of the pair: 422 naming it, nothing saved
    pair = next(it for it in page["items"] if it["params"].get("boxes"))
    n = len(pair["params"]["boxes"])
    r = client.patch(f"/api/qa/{pair['id']}", json={"question": f"What is in the box {{box{n + 6}}}? And {{box0}}?"})
    assert r.status_code == 422 and f"{{box{n + 6}}}" in r.json()["detail"], r.text
    assert "{box0}" not in r.json()["detail"].split("refers")[0]
    assert "box" + str(n + 6) not in _list(client, pid, image_id=pair["image_id"])["items"][0]["question"]
    r = client.patch(f"/api/qa/{pair['id']}", json={"answer": "see {box0}"})
    assert r.status_code == 200 and r.json()["source"] == "human"


def test_stale_pairs_are_marked_and_regenerated_keeping_edits(client):
    pid, kart, ids = _setup(client)
    before = _list(client, pid, image_id=ids[0])
    edited = before["items"][0]
    assert client.patch(f"/api/qa/{edited['id']}", json={"question": edited["question"] + " (checked)"}).status_code == 200
    untouched = _list(client, pid, image_id=ids[1])["items"]
    # a box added on image 0: its pairs are stale, the others are not
    assert client.post(f"/api/images/{ids[0]}/boxes", json={"label_id": kart, "x1": 70, "y1": 10, "x2": 110, "y2": 50}).status_code == 201
    stale = _list(client, pid, stale="true")
    assert stale["total"] == before["total"] and {it["image_id"] for it in stale["items"]} == {ids[0]}
    assert all(it["stale"] for it in _list(client, pid, image_id=ids[0])["items"])
    assert _list(client, pid, stale="false")["total"] == _list(client, pid)["total"] - before["total"]
    r = client.post(f"/api/projects/{pid}/qa/regenerate-stale")
    assert r.status_code == 200 and r.json()["images"] == 1 and r.json()["inserted"] > 0, r.text
    after = _list(client, pid, image_id=ids[0])["items"]
    kept = [it for it in after if it["id"] == edited["id"]]
    assert kept and kept[0]["question"].endswith("(checked)") and kept[0]["stale"]  # a person's edit is kept
    assert [it for it in after if it["source"] == "generated"] and not any(
        it["stale"] for it in after if it["source"] == "generated")
    counting = [it for it in after if it["family"] == "counting" and it["source"] == "generated"]
    assert any("3" in it["answer"] for it in counting), counting  # the new box is counted
    assert _list(client, pid, image_id=ids[1])["items"] == untouched  # other images untouched
    assert client.post(f"/api/projects/{pid}/qa/regenerate-stale").json()["deleted"] == 0
