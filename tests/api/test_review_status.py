"""Review status drives training and export: runs and exports take an image_status filter (default
everything but rejected), recorded in the snapshot; the counts endpoint says what a run would use."""
from __future__ import annotations

import csv
import io
import zipfile

from tests.api.conftest import image_bytes

import pytest


@pytest.fixture
def run_cfg(tmp_path) -> dict:
    """A run config on a local model folder (config.json only: these runs are never executed, and
    a hub id would be refused offline before queueing)."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "paligemma"}')
    return {"family": "paligemma", "base_model": str(model), "leak_key": "frame"}


def _setup(client, upload, pid: int) -> dict[str, int]:
    """6 images: train a..d, test e..f; statuses a accepted, b rejected, c in_review, d unlabeled,
    e accepted, f rejected."""
    ids = {i["file_name"]: i["id"] for i in upload(pid, {f"{n}.png": image_bytes(8, 8 + k)
                                                         for k, n in enumerate("abcdef")}).json()["images"]}
    for names, split in (("abcd", "train"), ("ef", "test")):
        r = client.patch(f"/api/projects/{pid}/images", json={"ids": [ids[f"{n}.png"] for n in names], "split": split})
        assert r.status_code == 200, r.text
    for n, path in {"a": ["in_review", "accepted"], "b": ["in_review", "rejected"], "c": ["in_review"],
                    "e": ["in_review", "accepted"], "f": ["in_review", "rejected"]}.items():
        for st in path:
            assert client.post(f"/api/images/{ids[n + '.png']}/status", json={"status": st}).status_code == 200
    return ids


def _snapshot(client, run: dict) -> dict:
    r = client.get(f"/api/runs/{run['id']}")
    assert r.status_code == 200, r.text
    return r.json()["snapshot"]


def test_runs_train_on_the_chosen_statuses(client, project, upload, run_cfg):
    pid = project["id"]
    _setup(client, upload, pid)
    r = client.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": run_cfg})
    assert r.status_code == 201, r.text
    assert r.json()["config"]["image_status"] == "not_rejected"
    snap = _snapshot(client, r.json())
    assert snap["image_status"] == "not_rejected" and snap["n_images"] == 4  # a c d e
    r = client.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": {**run_cfg, "image_status": "accepted"}})
    assert r.status_code == 201, r.text
    snap = _snapshot(client, r.json())
    assert snap["image_status"] == "accepted" and snap["n_images"] == 2  # a e
    r = client.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": {**run_cfg, "image_status": "all"}})
    assert _snapshot(client, r.json())["n_images"] == 6
    # bad filter: 422 naming the field; no accepted image left in a split: 422 saying which
    r = client.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": {**run_cfg, "image_status": "done"}})
    assert r.status_code == 422 and "config.image_status" in r.json()["detail"]
    r = client.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": {**run_cfg, "image_status": "unlabeled"}})
    assert r.status_code == 422 and "held-out" in r.json()["detail"] and "unlabeled" in r.json()["detail"]


def test_counts_per_split_and_status(client, project, upload):
    pid = project["id"]
    _setup(client, upload, pid)
    r = client.get(f"/api/projects/{pid}/images/counts")
    assert r.status_code == 200
    got = {(c["split"], c["status"]): c["n"] for c in r.json()}
    assert got == {("train", "accepted"): 1, ("train", "rejected"): 1, ("train", "in_review"): 1,
                   ("train", "unlabeled"): 1, ("test", "accepted"): 1, ("test", "rejected"): 1}


def test_export_filters_and_writes_each_status(client, project, upload):
    pid = project["id"]
    _setup(client, upload, pid)

    def export(**params) -> dict:
        r = client.get(f"/api/projects/{pid}/export", params={"format": "coco", **params})
        assert r.status_code == 200, r.text
        text = zipfile.ZipFile(io.BytesIO(r.content)).read("image_status.csv").decode()
        return dict(list(csv.reader(io.StringIO(text)))[1:])

    assert export() == {"a.png": "accepted", "c.png": "in_review", "d.png": "unlabeled", "e.png": "accepted"}
    assert export(image_status="accepted") == {"a.png": "accepted", "e.png": "accepted"}
    assert len(export(image_status="all")) == 6
    r = client.get(f"/api/projects/{pid}/export", params={"format": "coco", "image_status": "finished"})
    assert r.status_code == 422 and "image_status" in r.json()["detail"]


def test_status_change_can_be_undone(client, project, upload):
    pid = project["id"]
    img = upload(pid, {"a.png": image_bytes()}).json()["images"][0]["id"]
    assert client.post(f"/api/images/{img}/status", json={"status": "in_review"}).status_code == 200
    assert client.post(f"/api/images/{img}/status", json={"status": "unlabeled"}).json()["status"] == "unlabeled"
