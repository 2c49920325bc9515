"""The review loop's buttons in a real Chromium against the real studio and worker (issue 15): send
a tiny run's worst held-out image to review, open it from the review queue in the editor, retrain
with the corrections and read the lineage and the parent column; a predict run's "Review in this
order" — every step checked through the REST API."""
from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.e2e.conftest import SHOTS, shot
from tests.e2e.helpers import assert_accessible
from tests.e2e.test_editor import sign_in
from tests.e2e.test_runs_page import make_project, tiny_paligemma  # noqa: F401 - the fixture

CFG = {"family": "paligemma", "max_steps": 2, "batch_size": 2, "learning_rate": 1e-3, "max_new_tokens": 8,
       "qa_families": ["counting"], "eval_qa_per_image": 1, "device": "cpu"}


def wait_done(api, rid: int, timeout: float = 150) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        run = api.get(f"/api/runs/{rid}").json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            assert run["status"] == "succeeded", f"{run['error']}\n{run['traceback']}"
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {rid} did not finish in {timeout} s")


def test_send_to_review_queue_retrain_lineage_and_review_in_order(page, studio, studio_worker, tiny_paligemma):
    api = studio.api()
    pid, ids = make_project(api)
    parent = api.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": {
        **CFG, "base_model": str(tiny_paligemma)}}).json()
    wait_done(api, parent["id"])
    sign_in(page, studio.token)

    # From the gallery: the images that still miss boxes, by the gallery's error filter
    page.goto(f"/projects/{pid}/runs/{parent['id']}/gallery")
    page.get_by_label("Error after fine-tuning").select_option("missed")
    send = page.get_by_role("group", name="Send to review")
    send.get_by_role("button", name="Send to review (missed)").click()
    n_missed = api.get(f"/api/runs/{parent['id']}/gallery", params={"error": "missed"}).json()["total"]
    expect(send.get_by_role("status")).to_contain_text(f"{n_missed} sent")
    got = api.get(f"/api/projects/{pid}/review-queue", params={"run_id": parent["id"]}).json()["items"]
    assert len(got) == n_missed and {i["reason"] for i in got} <= {"missed"}

    # Send to review: the worst held-out image, by change (replaces the run's queue)
    page.goto(f"/projects/{pid}/runs/{parent['id']}")
    loop = page.get_by_role("group", name="Review loop")
    expect(loop).to_be_visible()
    loop.get_by_label("Images").fill("1")
    loop.get_by_role("button", name="Send to review").click()
    expect(loop.get_by_role("status")).to_contain_text("1 image(s) sent to review")
    queue = api.get(f"/api/projects/{pid}/review-queue", params={"run_id": parent["id"]}).json()
    assert len(queue["items"]) == 1 and queue["items"][0]["status"] == "in_review"
    worst = queue["items"][0]["image_id"]
    assert_accessible(page)
    shot(page, "60-loop-sent-to-review")

    # The queue as a grid, then the editor with the queue bar
    loop.get_by_role("link", name="Open the review queue").click()
    expect(page.get_by_role("heading", name=re.compile(f"Review queue of run {parent['id']}"))).to_be_visible()
    cells = page.get_by_role("list", name="Review queue").get_by_role("listitem")
    expect(cells).to_have_count(1)
    shot(page, "61-loop-queue-grid")
    cells.first.get_by_role("link").click()
    page.wait_for_url(re.compile(rf"/projects/{pid}/images/{worst}\?queue={parent['id']}"))
    bar = page.get_by_role("navigation", name="Review queue")
    expect(bar).to_contain_text("1 of 1")
    expect(bar).to_contain_text("1 still in review")
    expect(bar).to_contain_text("The last one in review.")
    shot(page, "62-loop-editor-queue")
    assert api.post(f"/api/images/{worst}/status", json={"status": "accepted"}).status_code == 200  # corrected

    # Retrain with the corrections: the child run's page, its lineage, then the parent column with Δ
    page.goto(f"/projects/{pid}/runs/{parent['id']}")
    page.get_by_role("button", name="Retrain with the corrections").click()
    page.wait_for_url(re.compile(rf"/projects/{pid}/runs/(?!{parent['id']}$)\d+$"))
    child_id = int(page.url.rsplit("/", 1)[1])
    child = api.get(f"/api/runs/{child_id}").json()
    assert child["parent_run_id"] == parent["id"] and child["kind"] == "train"
    lineage = api.get(f"/api/runs/{child_id}/lineage").json()
    wait_done(api, child_id)
    wait_done(api, lineage["comparison"]["compare_run_id"])
    page.reload()
    expect(page.get_by_label("Lineage")).to_contain_text(f"run {parent['id']}")
    table = page.get_by_role("table", name="Parent and child")
    expect(table).to_be_visible()
    rows = {r["metric"]: r for r in api.get(f"/api/runs/{child_id}/lineage").json()["comparison"]["rows"]}
    m = table.get_by_role("row").filter(has=page.get_by_role("cell", name="map", exact=True))
    expect(m.get_by_role("cell").nth(1)).to_have_text(f"{rows['map']['parent']:.3f}")
    expect(m.get_by_role("cell").nth(2)).to_have_text(f"{rows['map']['child']:.3f}")
    assert_accessible(page)
    page.get_by_role("group", name="Review loop").screenshot(path=str(SHOTS / "63-loop-retrained-lineage.png"))

    # A predict run: review in the model's order of uncertainty
    pr = api.post(f"/api/projects/{pid}/runs", json={"kind": "predict", "config": {
        **CFG, "base_model": str(tiny_paligemma), "image_ids": ids}}).json()
    wait_done(api, pr["id"])
    page.goto(f"/projects/{pid}/runs/{pr['id']}")
    page.get_by_role("button", name="Review in this order").click()
    page.wait_for_url(re.compile(rf"/projects/{pid}/review\?run={pr['id']}"))
    want = [i["file_name"] for i in api.get(f"/api/runs/{pr['id']}/uncertainty").json()["items"]]
    cells = page.get_by_role("list", name="Review queue").get_by_role("listitem")
    expect(cells).to_have_count(len(ids))
    assert [cells.nth(k).get_by_role("img").get_attribute("alt") for k in range(len(ids))] == want
    # the model's boxes became drafts (source "model") on the queued images, to accept or fix
    preds = api.get(f"/api/runs/{pr['id']}/predictions", params={"phase": "predict"}).json()["items"]
    known = {(p["image_id"], p["label"]) for p in preds if p["label"] in ("kart", "ball")}
    model = {(i, b["label_id"]) for i in ids for b in api.get(f"/api/images/{i}").json()["boxes"]
             if b["source"] == "model"}
    assert len(model) == len(known)  # one draft per (image, label) the tiny model predicted here
    shot(page, "64-loop-review-in-order")
