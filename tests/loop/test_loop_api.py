"""The loop end to end through the API on the tiny PaliGemma, executed in-process by the real
executor, on SQLite and PostgreSQL: a run, send-to-review, corrections, retrain, lineage and Δ;
a predict run ranked by uncertainty into a review queue with its drafts accepted."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from backend.db import session_scope
from backend.models import Image, ImageStatus, Prediction, Run, RunKind, RunStatus
from backend.runs import store_results
from tests.formats.helpers import new_project, png, post_import
from tests.runs.conftest import config
from worker.runner import execute


def launch(client, pid, kind="train", **cfg):
    return client.post(f"/api/projects/{pid}/runs", json={"kind": kind, "config": cfg})


def test_review_corrections_retrain_lineage_and_delta(client, app, project, tiny_paligemma):
    settings = app.state.settings
    parent = launch(client, project, **config(tiny_paligemma, max_steps=2)).json()
    assert execute(parent["id"], settings) == "succeeded"
    with session_scope(app.state.sessionmaker) as s:
        held_out = s.scalar(select(Image.id).where(Image.project_id == project, Image.split == "test"))
        s.execute(Image.__table__.update().where(Image.id == held_out).values(status=ImageStatus.accepted))

    # send to review: the held-out image (the only one) comes back, tagged with the run, in_review
    r = client.post(f"/api/runs/{parent['id']}/review", json={"n": 5, "by": "change"})
    assert r.status_code == 200, r.text
    q = r.json()
    assert q["run_id"] == parent["id"] and [i["image_id"] for i in q["items"]] == [held_out]
    item = q["items"][0]
    assert item["rank"] == 0 and item["reason"] == "regressed" and item["status"] == "in_review" and q["pending"] == 1
    per = client.get(f"/api/runs/{parent['id']}/gallery").json()["items"][0]
    assert item["score"] == pytest.approx(per["change"])
    assert client.get(f"/api/images/{held_out}").json()["status"] == "in_review"
    assert client.get(f"/api/projects/{project}/review-queue").json() == q  # the latest queue by default

    # corrections through the API: a missing kart added, the image accepted; the queue shows it done
    labels = {lab["name"]: lab["id"] for lab in client.get(f"/api/projects/{project}").json()["labels"]}
    r = client.post(f"/api/images/{held_out}/boxes", json={"label_id": labels["kart"], "x1": 1, "y1": 2, "x2": 40, "y2": 30})
    assert r.status_code == 201, r.text
    assert client.post(f"/api/images/{held_out}/status", json={"status": "accepted"}).status_code == 200
    assert client.get(f"/api/projects/{project}/review-queue", params={"run_id": parent["id"]}).json()["pending"] == 0

    # retrain with the corrections: the parent's config on a new snapshot, and the parent on the same images
    r = client.post(f"/api/runs/{parent['id']}/retrain")
    assert r.status_code == 201, r.text
    child = r.json()
    assert child["kind"] == "train" and child["parent_run_id"] == parent["id"]
    assert child["snapshot_id"] != parent["snapshot_id"]  # the correction is in the new snapshot
    assert child["config"] == parent["config"]
    compare = client.get(f"/api/runs/{child['compare_run_id']}").json()
    assert compare["kind"] == "evaluate" and compare["config"]["adapter_run_id"] == parent["id"]
    lin = client.get(f"/api/runs/{child['id']}/lineage").json()
    assert lin["comparison"]["status"] == "queued" and lin["comparison"]["rows"] == []
    assert execute(child["id"], settings) == "succeeded"
    assert execute(compare["id"], settings) == "succeeded"

    lin = client.get(f"/api/runs/{child['id']}/lineage").json()
    assert [a["id"] for a in lin["ancestors"]] == [parent["id"]] and lin["parent_run_id"] == parent["id"]
    cmp = lin["comparison"]
    assert cmp["compare_run_id"] == compare["id"] and cmp["same_images"] is True
    rows = {row["metric"]: row for row in cmp["rows"]}
    assert {"map", "ap50", "f1", "vqa_accuracy"} <= set(rows)
    child_after = client.get(f"/api/runs/{child['id']}").json()["metrics"]["after"]
    parent_on_same = client.get(f"/api/runs/{compare['id']}").json()["metrics"]["after"]
    for k in ("map", "ap50", "f1"):
        assert rows[k]["child"] == child_after[k] and rows[k]["parent"] == parent_on_same[k]
        assert rows[k]["delta"] == pytest.approx(child_after[k] - parent_on_same[k])
    assert [c["id"] for c in client.get(f"/api/runs/{parent['id']}/lineage").json()["children"]] == [child["id"]]

    # bad input: a 4xx naming the problem
    assert client.post(f"/api/runs/{compare['id']}/retrain").status_code == 422  # an evaluate run
    assert client.post(f"/api/runs/{parent['id']}/review", json={"n": 0}).status_code == 422
    r = client.post(f"/api/runs/{parent['id']}/review", json={"n": 1, "by": "uncertainty"})
    assert r.status_code == 422 and "predict run" in r.json()["detail"]
    assert client.get(f"/api/runs/{parent['id']}/uncertainty").status_code == 422
    assert client.post("/api/runs/999999/review", json={"n": 1}).status_code == 404


def test_predict_ranked_by_uncertainty_review_in_order_and_accept_drafts(client, app, project, tiny_paligemma):
    settings = app.state.settings
    with session_scope(app.state.sessionmaker) as s:
        ids = list(s.scalars(select(Image.id).where(Image.project_id == project).order_by(Image.id)))
    pr = launch(client, project, kind="predict", image_ids=ids, **config(tiny_paligemma, max_new_tokens=8)).json()
    assert client.get(f"/api/runs/{pr['id']}/uncertainty").status_code == 409  # not done yet
    assert execute(pr["id"], settings) == "succeeded"
    ranked = client.get(f"/api/runs/{pr['id']}/uncertainty").json()
    assert ranked["total"] == 3 and {i["image_id"] for i in ranked["items"]} == set(ids)
    scores = [i["score"] for i in ranked["items"]]
    assert scores == sorted(scores)  # the least confident first
    for i in ranked["items"]:  # the real outputs of the tiny model, classified
        assert (i["reason"] in ("empty", "unparseable")) == (i["n_boxes"] == 0) and i["file_name"]

    r = client.post(f"/api/runs/{pr['id']}/review", json={"n": 2, "by": "uncertainty"})
    assert r.status_code == 200, r.text
    queue = r.json()
    assert [i["image_id"] for i in queue["items"]] == [i["image_id"] for i in ranked["items"][:2]]
    assert all(i["status"] == "in_review" for i in queue["items"])
    # the model's drafts on the queued images become boxes to accept or fix (source "model")
    first = queue["items"][0]["image_id"]
    with session_scope(app.state.sessionmaker) as s:
        s.add(Prediction(run_id=pr["id"], image_id=first, phase="predict", task="detect", label="kart", x1=1, y1=2,
                         x2=30, y2=40, score=0.3, raw_text="<loc...> kart"))
    r = client.post(f"/api/runs/{pr['id']}/accept", json={"image_ids": [first], "min_score": 0.0})
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    # a second send replaces that run's queue
    r = client.post(f"/api/runs/{pr['id']}/review", json={"n": 1, "by": "uncertainty"}).json()
    assert len(r["items"]) == 1


def unlabeled_project(client, app, names: str) -> tuple[int, list[int]]:
    """A project with one unlabeled 16x16 image per letter of `names`: (project id, image ids in order)."""
    pid = new_project(client)
    files = {"annotations.json": json.dumps({"images": [
        {"id": i, "file_name": f"{n}.png", "width": 16, "height": 16} for i, n in enumerate(names, 1)],
        "annotations": [], "categories": [{"id": 1, "name": "kart"}]}).encode()}
    files.update({f"images/{n}.png": png(16, 16, seed=i) for i, n in enumerate(names, 1)})
    assert post_import(client, pid, "coco", files).status_code == 200
    with session_scope(app.state.sessionmaker) as s:
        return pid, s.scalars(select(Image.id).where(Image.project_id == pid).order_by(Image.id)).all()


def test_uncertainty_order_on_known_scores(client, app):
    """Empty and unparseable outputs first, then by the least confident box, low first."""
    pid, (a, b, c, d) = unlabeled_project(client, app, "abcd")
    with session_scope(app.state.sessionmaker) as s:
        run = Run(project_id=pid, kind=RunKind.predict, status=RunStatus.succeeded, config={})
        s.add(run)
        s.flush()
        rid = run.id
        for iid, label, score, raw in ((a, "kart", 0.9, "x"), (a, "kart", 0.4, "x"), (b, None, None, ""),
                                       (c, None, None, "garbage"), (d, "kart", 0.95, "y")):
            s.add(Prediction(run_id=rid, image_id=iid, phase="predict", task="detect", label=label,
                             x1=0 if label else None, y1=0 if label else None, x2=5 if label else None,
                             y2=5 if label else None, score=score, raw_text=raw))
    items = client.get(f"/api/runs/{rid}/uncertainty").json()["items"]
    assert [(i["image_id"], i["reason"], i["score"]) for i in items] == [
        (b, "empty", 0.0), (c, "unparseable", 0.0), (a, "uncertain", 0.4), (d, "uncertain", 0.95)]
    assert [i["image_id"] for i in client.get(f"/api/runs/{rid}/uncertainty", params={"limit": 2, "offset": 1})
            .json()["items"]] == [c, a]


def test_worst_images_by_change_and_by_error_kind(client, app):
    """Most regressed first; by an error kind, the most of it first (images without it left out);
    an evaluate run (one phase) by its lowest f1."""
    pid, (a, b, c) = unlabeled_project(client, app, "abc")
    with session_scope(app.state.sessionmaker) as s:

        def stats(iid, f1, fn=0, fp=0, wl=0):
            return {"image_id": iid, "tp": 1, "fp": fp, "fn": fn, "wrong_label": wl, "f1": f1}

        per = {"before": [stats(a, 0.5), stats(b, 0.9), stats(c, 0.2)],
               "after": [stats(a, 0.6, fn=1), stats(b, 0.3, fn=3, wl=1), stats(c, 0.2)]}
        train = Run(project_id=pid, kind=RunKind.train, status=RunStatus.succeeded, config={})
        ev = Run(project_id=pid, kind=RunKind.evaluate, status=RunStatus.succeeded, config={})
        s.add_all([train, ev])
        s.flush()
        tid, eid = train.id, ev.id
        # the rows the runner writes (backend.runs.store_results): both phases, and an evaluate run's one
        held_out = {a: "test", b: "test", c: "test"}
        for phase in ("before", "after"):
            store_results(s, tid, phase, per[phase], held_out)
        store_results(s, eid, "after", per["before"], held_out)

    def order(rid, by, n=10):
        r = client.post(f"/api/runs/{rid}/review", json={"n": n, "by": by})
        assert r.status_code == 200, r.text
        return [(i["image_id"], i["reason"]) for i in r.json()["items"]]

    assert order(tid, "change") == [(b, "regressed"), (c, "regressed"), (a, "regressed")]
    assert order(tid, "missed") == [(b, "missed"), (a, "missed")]
    assert order(tid, "wrong_label") == [(b, "wrong_label")]
    assert order(tid, "false_box") == []
    assert order(eid, "change", n=2) == [(c, "low_f1"), (a, "low_f1")]
    assert client.get(f"/api/projects/{pid}/review-queue").json()["run_id"] == eid  # the latest queue
    statuses = {i["id"]: i["status"] for i in client.get(f"/api/projects/{pid}/images").json()["items"]}
    assert statuses == {a: "in_review", b: "in_review", c: "in_review"}
