"""Bad input: a clear 4xx before anything is queued, or a failed run with the reason; never a stuck
run. Plus roles: viewers read, annotators launch, non-members see nothing."""
from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from backend.db import session_scope
from backend.models import Run
from tests.runs.conftest import config
from worker.runner import execute


def launch(client, pid, kind="train", **cfg):
    return client.post(f"/api/projects/{pid}/runs", json={"kind": kind, "config": cfg})


def n_runs(app) -> int:
    with session_scope(app.state.sessionmaker) as s:
        return len(s.scalars(select(Run.id)).all())


@pytest.mark.parametrize("override, field", [
    ({"eval_split": "val"}, "config.eval_split"),  # no images in the held-out split
    ({"base_model": "/nowhere/model"}, "config.base_model"),  # folder missing
    ({"base_model": "./models/tiny"}, "config.base_model"),  # relative path, missing
    ({"family": "qwen2_vl"}, "config.family"),  # family / model mismatch
    ({"family": "llava"}, "config.family"),  # unknown family
    ({"learning_rate": -1}, "config.learning_rate"),
    ({"rank": 0}, "config.rank"),
    ({"bnb_4bit_compute_dtyp": "float16"}, "config.bnb_4bit_compute_dtyp"),  # misspelled knob
    ({"tasks": {"detect": 0, "vqa": 0}}, "config.tasks"),
    ({"tasks": {"detect": 1, "vqa:spatail": 2}}, "config.tasks"),  # a misspelled question family
    ({"train_split": "test"}, "config.eval_split"),
    ({"output_dir": "/tmp/x"}, "config.output_dir"),  # the studio picks it
    ({"loc_sigma": -1}, "config.loc_sigma"),
    ({"family": "qwen2_vl", "base_model": "Qwen/Qwen2-VL-2B-Instruct", "loc_sigma": 6}, "config.loc_sigma"),  # text coordinates
])
def test_bad_config_is_422_naming_the_field(client, app, project, tiny_paligemma, override, field):
    r = launch(client, project, **config(tiny_paligemma, **override))
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(field), r.json()
    assert n_runs(app) == 0  # nothing queued


def test_model_folder_without_config_and_bad_kind(client, project, tiny_paligemma, tmp_path):
    (tmp_path / "empty").mkdir()
    r = launch(client, project, **config(tiny_paligemma, base_model=str(tmp_path / "empty")))
    assert r.status_code == 422 and "config.json" in r.json()["detail"]
    assert launch(client, project, kind="generate", **config(tiny_paligemma)).status_code == 422
    r = launch(client, project, kind="predict", **config(tiny_paligemma))
    assert r.status_code == 422 and r.json()["detail"].startswith("config.image_ids")
    r = launch(client, project, kind="predict", adapter_run_id=12345)
    assert r.status_code == 422 and r.json()["detail"].startswith("config.adapter_run_id")


def test_leaking_split_is_409(client, app, project, tiny_paligemma):
    # by track the split leaks: cornfield_crossing has a frame in train and one in test
    r = launch(client, project, **config(tiny_paligemma, leak_key="track"))
    assert r.status_code == 409 and "cornfield_crossing" in r.json()["detail"]
    assert n_runs(app) == 0


def test_qlora_where_bitsandbytes_cannot_run_fails_with_the_reason(client, app, project, tiny_paligemma):
    r = launch(client, project, **config(tiny_paligemma, method="qlora", device="cuda"))
    assert r.status_code == 201, r.text
    assert execute(r.json()["id"], app.state.settings) == "failed"
    v = client.get(f"/api/runs/{r.json()['id']}").json()
    assert v["status"] == "failed" and v["ended_at"]
    assert "QLoRA (4-bit) cannot run on device 'cuda'" in v["error"]
    assert "Traceback" in v["traceback"]


def test_model_deleted_after_queueing_fails_the_run(client, app, project, tiny_paligemma, tmp_path):
    copy = shutil.copytree(tiny_paligemma, tmp_path / "model")
    r = launch(client, project, **config(tiny_paligemma, base_model=str(copy)))
    assert r.status_code == 201
    shutil.rmtree(copy)
    assert execute(r.json()["id"], app.state.settings) == "failed"
    assert "ModelNotFound" in client.get(f"/api/runs/{r.json()['id']}").json()["error"]


def test_roles(client, app, project, tiny_paligemma):
    run = launch(client, project, **config(tiny_paligemma)).json()
    tokens = {}
    for name, role in (("vera", "viewer"), ("otto", None)):
        uid = client.post("/api/users", json={"username": name}).json()["id"]
        tokens[name] = client.post(f"/api/users/{uid}/tokens", json={"name": "t"}).json()["token"]
        if role:
            assert client.post(f"/api/projects/{project}/members", json={"user_id": uid, "role": role}).status_code == 200
    h_viewer = {"Authorization": f"Bearer {tokens['vera']}"}
    h_out = {"Authorization": f"Bearer {tokens['otto']}"}
    assert client.get(f"/api/runs/{run['id']}", headers=h_viewer).status_code == 200
    assert client.get(f"/api/projects/{project}/runs", headers=h_viewer).status_code == 200
    assert client.post(f"/api/projects/{project}/runs", headers=h_viewer,
                       json={"kind": "train", "config": config(tiny_paligemma)}).status_code == 403
    assert client.post(f"/api/runs/{run['id']}/cancel", headers=h_viewer).status_code == 403
    for url in (f"/api/runs/{run['id']}", f"/api/runs/{run['id']}/predictions", f"/api/runs/{run['id']}/gallery",
                f"/api/projects/{project}/runs"):
        assert client.get(url, headers=h_out).status_code == 404, url
    assert client.post(f"/api/runs/{run['id']}/cancel", headers=h_out).status_code == 404
    assert client.get(f"/api/runs/{run['id']}", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/runs/99999").status_code == 404
    assert client.get(f"/api/runs/{run['id']}/adapter").status_code == 404  # not trained yet
