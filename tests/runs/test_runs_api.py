"""Runs over the API, executed in-process by the real executor (worker.runner.execute), on SQLite
and PostgreSQL: the lifecycle, metrics, predictions, gallery, adapter zip, cancel, bad input."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from backend.db import session_scope
from backend.models import Box, BoxSource, Image, Prediction, Run
from tests.runs.conftest import config, wait_for
from worker.runner import execute
from worker.train_config import TrainConfig
from worker.training import CONFIG_NAME

ROOT = Path(__file__).resolve().parents[2]
TABLE_NEEDS = {"mAP", "AP50", "AP75", "precision@50", "recall@50", "F1@50", "mean IoU", "VQA accuracy"}


def launch(client, pid, kind="train", **cfg):
    return client.post(f"/api/projects/{pid}/runs", json={"kind": kind, "config": cfg})


def test_train_run_end_to_end(client, app, project, tiny_paligemma):
    settings = app.state.settings
    # a question family's own weight in the task mix is stored and reaches the worker on both databases
    tasks = {"detect": 1.0, "vqa": 1.0, "vqa:counting": 2.0}
    r = launch(client, project, **config(tiny_paligemma, checkpoint_every=2, tasks=tasks))
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "queued" and run["progress"] == 0 and run["snapshot_id"]
    assert run["config"]["tasks"] == tasks
    assert execute(run["id"], settings) == "succeeded"
    v = client.get(f"/api/runs/{run['id']}").json()
    assert v["status"] == "succeeded", v["error"]
    assert v["progress"] == 1.0 and v["step"] == 4 and v["total_steps"] == 4
    assert [h["step"] for h in v["loss_history"]] == [1, 2, 3, 4]
    assert all(h["loss"] > 0 and h["lr"] > 0 for h in v["loss_history"])
    assert v["samples_per_s"] > 0 and v["started_at"] and v["ended_at"] and v["attempts"] == 1
    assert any("train: done" in line for line in v["log_tail"])
    # the log says how evaluation loaded the models (on CUDA: as the run trains them)
    assert any("base model loaded for evaluation in float32 (CPU)" in line for line in v["log_tail"])
    assert any("base model + adapter loaded for evaluation in float32 (CPU)" in line for line in v["log_tail"])
    m = v["metrics"]
    assert {"before", "after", "table"} <= set(m) and "per_image" not in m
    names = {row["metric"] for row in m["table"]}
    assert TABLE_NEEDS <= names, names
    assert "AP50: kart" in names and "mean IoU: kart" in names
    assert any(n.startswith("VQA accuracy: ") for n in names)
    for row in m["table"]:
        if row["pretrained"] is not None and row["finetuned"] is not None:
            assert row["delta"] == pytest.approx(row["finetuned"] - row["pretrained"])
    assert m["before"]["n_images"] == 1 and m["before"]["vqa"]["n"] >= 1
    # the location prior: the train split's median kart box on the held-out image, beside the table
    box = m["prior"]["boxes"]["kart"]
    assert len(box) == 4 and all(0 <= v <= 1 for v in box) and box[0] < box[2] and box[1] < box[3]
    rows = {row["metric"]: row for row in m["table"]}
    assert rows["AP50"]["prior"] == m["prior"]["ap50"] and rows["F1@50"]["prior"] == m["prior"]["f1"]
    assert rows["VQA accuracy"]["prior"] is None
    # the majority answer: per question template, the train split's most common answer on every question
    maj = m["majority"]
    assert rows["VQA accuracy"]["majority"] == maj["accuracy"] and maj["n"] == m["after"]["vqa"]["n"]
    for t, per in maj["per_type"].items():
        assert rows[f"VQA accuracy: {t}"]["majority"] == per["accuracy"]
        assert per["answers"] and all(isinstance(a, str) for a in per["answers"].values())  # one per template
    assert rows["AP50"]["majority"] is None
    # every prediction is stored: detection rows per image (raw text kept) and VQA rows with correctness
    preds = client.get(f"/api/runs/{run['id']}/predictions", params={"phase": "after"}).json()["items"]
    det = [p for p in preds if p["task"] == "detect"]
    vqa = [p for p in preds if p["task"] == "vqa"]
    assert det and all(isinstance(p["raw_text"], str) for p in det)
    assert len(vqa) == m["after"]["vqa"]["n"]
    assert all(isinstance(p["correct"], bool) and p["expected"] is not None and "{box" not in p["question"]
               for p in vqa)
    assert sum(p["correct"] for p in vqa) == m["after"]["vqa"]["correct"]
    before = client.get(f"/api/runs/{run['id']}/predictions", params={"phase": "before"}).json()["items"]
    assert before
    # gallery: the held-out image with ground truth and both phases
    g = client.get(f"/api/runs/{run['id']}/gallery", params={"sort": "most_regressed"}).json()
    assert g["total"] == 1
    item = g["items"][0]
    assert item["ground_truth"] and item["before"] is not None and item["after"] is not None
    assert {"tp", "fp", "fn", "wrong_label", "f1"} <= set(item["stats_after"])
    # the filters: an error type keeps the image iff its after-stats still have that error; a label
    # matches the ground truth case- and space-insensitively
    for err, stat in (("missed", "fn"), ("false_box", "fp"), ("wrong_label", "wrong_label")):
        got = client.get(f"/api/runs/{run['id']}/gallery", params={"error": err}).json()["total"]
        assert got == (1 if item["stats_after"][stat] else 0), err
    assert client.get(f"/api/runs/{run['id']}/gallery", params={"label": " KART "}).json()["total"] == 1
    assert client.get(f"/api/runs/{run['id']}/gallery", params={"label": "no such label"}).json()["total"] == 0
    assert item["change"] == pytest.approx(item["stats_after"]["f1"] - item["stats_before"]["f1"])
    # the adapter: a zip of the run's own folder, size reported
    assert v["adapter_bytes"] > 0
    z = client.get(f"/api/runs/{run['id']}/adapter")
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
    assert "adapter_model.safetensors" in names and "adapter_config.json" in names
    with session_scope(app.state.sessionmaker) as s:
        adapter = s.get(Run, run["id"]).adapter_path
    assert adapter.startswith(str((settings.data_dir / "runs" / str(run["id"])).resolve()))
    assert TrainConfig.load(Path(adapter) / CONFIG_NAME).task_weights == tasks  # what the worker trained with
    # the snapshot is reused for unchanged data, and a new one is frozen after an edit
    again = launch(client, project, **config(tiny_paligemma)).json()
    assert again["snapshot_id"] == run["snapshot_id"]
    with session_scope(app.state.sessionmaker) as s:
        s.get(Image, item["image_id"]).boxes[0].x1 += 1
    edited = launch(client, project, **config(tiny_paligemma)).json()
    assert edited["snapshot_id"] != run["snapshot_id"]
    client.post(f"/api/runs/{edited['id']}/cancel")
    listed = client.get(f"/api/projects/{project}/runs").json()
    assert listed["total"] == 3 and [x["id"] for x in listed["items"]] == [edited["id"], again["id"], run["id"]]
    # finished: cancel is a conflict
    assert client.post(f"/api/runs/{run['id']}/cancel").status_code == 409


def test_evaluate_and_predict_then_accept(client, app, project, tiny_paligemma):
    settings = app.state.settings
    train = launch(client, project, **config(tiny_paligemma, max_steps=2)).json()
    assert execute(train["id"], settings) == "succeeded"
    ev = launch(client, project, kind="evaluate", adapter_run_id=train["id"], max_new_tokens=8).json()
    assert execute(ev["id"], settings) == "succeeded"
    m = client.get(f"/api/runs/{ev['id']}").json()["metrics"]
    assert "after" in m and "ap50" in m["after"] and "adapter_alone" not in m["after"]
    # the adapter's boxes pooled with its base's (one more detection pass, adapter off), its own numbers kept
    ev = launch(client, project, kind="evaluate", adapter_run_id=train["id"], max_new_tokens=8,
                pool_base_boxes=True).json()
    assert execute(ev["id"], settings) == "succeeded"
    v = client.get(f"/api/runs/{ev['id']}").json()
    assert {"ap50", "f1"} <= set(v["metrics"]["after"]["adapter_alone"])
    assert any("pool_base_boxes: the base's boxes on the same 1 images" in line for line in v["log_tail"])
    with session_scope(app.state.sessionmaker) as s:
        ids = list(s.scalars(select(Image.id).where(Image.project_id == project).order_by(Image.id)))
    pr = launch(client, project, kind="predict", adapter_run_id=train["id"], image_ids=ids[:2], max_new_tokens=8,
                pool_base_boxes=True)
    assert pr.status_code == 201, pr.text
    pid = pr.json()["id"]
    assert client.post(f"/api/runs/{pid}/accept", json={"image_ids": ids[:2]}).status_code == 409  # not done yet
    assert execute(pid, settings) == "succeeded"
    items = client.get(f"/api/runs/{pid}/predictions", params={"phase": "predict"}).json()["items"]
    assert {p["image_id"] for p in items} == set(ids[:2])  # every image has its raw output stored
    assert any("pool_base_boxes" in line for line in client.get(f"/api/runs/{pid}").json()["log_tail"])
    # The tiny random model rarely emits a well-formed box, so the drafts to accept are added here as
    # rows of this predict run (two on one image: one above, one below min_score; one unknown label).
    with session_scope(app.state.sessionmaker) as s:
        for label, score in (("kart", 0.9), ("kart", 0.1), ("zebra", 0.95)):
            s.add(Prediction(run_id=pid, image_id=ids[0], phase="predict", task="detect", label=label, x1=1, y1=2,
                             x2=30 + score, y2=40, score=score, raw_text="<loc...> kart"))
        n_before = len(s.scalars(select(Box).where(Box.image_id == ids[0])).all())
    r = client.post(f"/api/runs/{pid}/accept", json={"image_ids": [ids[0]], "min_score": 0.5})
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1 and r.json()["skipped"] >= 2
    with session_scope(app.state.sessionmaker) as s:
        boxes = s.scalars(select(Box).where(Box.image_id == ids[0]).order_by(Box.id)).all()
        assert len(boxes) == n_before + 1
        assert boxes[-1].source == BoxSource.model and boxes[-1].score == pytest.approx(0.9)
    again = client.post(f"/api/runs/{pid}/accept", json={"image_ids": [ids[0]], "min_score": 0.5}).json()
    assert again["created"] == 0  # accepting twice adds nothing
    assert client.post(f"/api/runs/{pid}/accept", json={"image_ids": [999999]}).status_code == 422


def test_cancel_queued_and_running(client, app, project, tiny_paligemma):
    settings = app.state.settings
    q = launch(client, project, **config(tiny_paligemma)).json()
    c = client.post(f"/api/runs/{q['id']}/cancel")
    assert c.status_code == 200 and c.json()["status"] == "cancelled"
    assert execute(q["id"], settings) is None  # its message arrives later: not claimable
    assert client.post(f"/api/runs/{q['id']}/cancel").status_code == 409

    r = launch(client, project, **config(tiny_paligemma, max_steps=400, checkpoint_every=0)).json()
    t = threading.Thread(target=execute, args=(r["id"], settings))
    t.start()
    try:
        wait_for(lambda: client.get(f"/api/runs/{r['id']}").json()["step"] >= 2, 120, what="training steps")
        assert client.post(f"/api/runs/{r['id']}/cancel").status_code == 200
    finally:
        t.join(120)
    v = client.get(f"/api/runs/{r['id']}").json()
    assert v["status"] == "cancelled" and 2 <= v["step"] < 400
    assert v["adapter_bytes"] > 0  # the adapter of the step it stopped at is kept
    assert client.post(f"/api/runs/{r['id']}/cancel").status_code == 409


def test_events_stream_until_the_end(client, app, project, tiny_paligemma):
    r = launch(client, project, **config(tiny_paligemma, max_steps=30)).json()
    t = threading.Thread(target=execute, args=(r["id"], app.state.settings))
    events = []
    with client.stream("GET", f"/api/runs/{r['id']}/events") as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in s.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "run":
                events.append(json.loads(line[6:]))
                if not t.is_alive() and len(events) == 1:
                    t.start()  # only once the stream has shown the queued state: no race with the claim
            if kind == "end":
                break
    t.join(60)
    statuses = [e["status"] for e in events]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded" and "running" in statuses
    versions = [e["version"] for e in events]
    assert versions == sorted(set(versions))  # one event per change


def test_two_concurrent_runs_keep_separate_outputs(client, app, project, tiny_paligemma):
    """Two train runs at once (two executor processes, like two workers): each writes only its own
    folder <data>/runs/<id>/, so neither overwrites the other's adapter."""
    settings = app.state.settings
    a = launch(client, project, **config(tiny_paligemma, max_steps=3, seed=1)).json()
    b = launch(client, project, **config(tiny_paligemma, max_steps=3, seed=2)).json()
    env = {**os.environ, "STUDIO_DATA_DIR": str(settings.data_dir), "DATABASE_URL": settings.resolved_database_url(),
           "STUDIO_TORCH_THREADS": "1"}
    code = "import sys; from worker.runner import execute; from worker.device import set_threads; set_threads(); " \
           "print(execute(int(sys.argv[1])))"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(x["id"])], env=env, cwd=ROOT) for x in (a, b)]
    assert [p.wait(240) for p in procs] == [0, 0]
    with session_scope(app.state.sessionmaker) as s:
        ra, rb = s.get(Run, a["id"]), s.get(Run, b["id"])
        assert ra.status.value == rb.status.value == "succeeded", (ra.error, rb.error)
        assert ra.started_at < rb.ended_at and rb.started_at < ra.ended_at  # they did overlap
        pa, pb = ra.adapter_path, rb.adapter_path
    assert f"/runs/{a['id']}/" in pa and f"/runs/{b['id']}/" in pb
    from safetensors.torch import load_file

    wa, wb = load_file(f"{pa}/adapter_model.safetensors"), load_file(f"{pb}/adapter_model.safetensors")
    assert any(not (wa[k] == wb[k]).all() for k in wa)  # different seeds, different adapters: no overwrite
