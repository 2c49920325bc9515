"""A newcomer's first minutes, in Chromium against a real `studio up` on a fresh data dir: the demo
project is there with images and QA, the demo model is ready at once (shipped weights) and
re-trains from scratch on the worker (a shortened recipe and frames folder through the real
STUDIO_DEMO_RECIPE / STUDIO_DEMO_FRAMES settings), a short run is launched from the catalogue pick, the
run page shows its configuration and a chart with axes, it is launched again with one change, the
two runs are compared, and "Try it" shows the base and adapter answers. Times are printed."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest
from playwright.sync_api import expect

from backend.demo import DEMO_DATA
from tests.e2e.conftest import ROOT, Studio, _free_port, shot
from tests.e2e.helpers import assert_accessible
from tests.e2e.test_editor import sign_in

QUICK_RECIPE = {"steps": 4, "batch_size": 4, "hidden": 64, "vision_layers": 1, "text_layers": 1}


@pytest.fixture(scope="module")
def up(frontend_dist, tmp_path_factory):
    """`studio up` (server + its own worker) on a fresh data dir; yields (Studio, seconds to a ready
    demo project as seen by the API)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    frames = tmp_path_factory.mktemp("frames")
    shutil.copytree(DEMO_DATA / "zengarden", frames / "other_track")  # a track the demo does not use by that name
    env.update(STUDIO_DATA_DIR=str(tmp_path_factory.mktemp("up-data")), STUDIO_DEMO_RECIPE=json.dumps(QUICK_RECIPE),
               STUDIO_DEMO_FRAMES=str(frames), STUDIO_TORCH_THREADS="1", HF_HUB_OFFLINE="1")
    log = tmp_path_factory.mktemp("up-log") / "up.log"
    t0 = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "up", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        token = None
        while time.monotonic() - t0 < 90 and token is None:
            m = re.search(r"admin API token: (\S+)", log.read_text())
            token = m.group(1) if m else None
            time.sleep(0.2)
        assert token, f"`studio up` printed no token:\n{log.read_text()[-3000:]}"
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        while True:
            try:
                if api.get("/api/projects").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
            assert time.monotonic() - t0 < 90, log.read_text()[-3000:]
        ready_project = time.monotonic() - t0
        yield Studio(url, token, env), ready_project, t0, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # up stops its worker
        try:
            proc.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture
def upage(browser, up):
    studio = up[0]
    ctx = browser.new_context(base_url=studio.url, viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def wait_run(api, rid: int, timeout: float = 180) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = api.get(f"/api/runs/{rid}").json()
        if v["status"] in ("succeeded", "failed", "cancelled"):
            return v
        time.sleep(1)
    raise AssertionError(f"run {rid} did not end in {timeout} s: {v['status']} {v['phase']}")


def test_newcomer_trains_compares_and_tries_from_the_browser(upage, up):
    studio, ready_project_s, t0, log = up
    page, api = upage, studio.api()

    # 1. the demo project is there, with images and QA, before anything else happened
    projects = api.get("/api/projects").json()
    assert [p["name"] for p in projects] == ["Demo: SuperTuxKart real frames"]
    pid = projects[0]["id"]
    assert api.get(f"/api/projects/{pid}/images", params={"limit": 1, "with_total": True}).json()["total"] == 200
    assert api.get(f"/api/projects/{pid}/qa", params={"limit": 1}).json()["total"] > 0
    sign_in(page, studio.token)
    page.get_by_role("link", name="Demo: SuperTuxKart real frames").click()
    banner = page.get_by_test_id("demo-banner")
    expect(banner).to_contain_text("demo model")
    shot(page, "60-demo-project")

    # 2. the demo model is ready at once (its weights ship, pre-trained on real frames of other
    # tracks); re-training it from scratch is a job on the worker, with progress and a log,
    # shortened by the real settings (a quick recipe, a frames folder of one track)
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Models").click()
    expect(page.get_by_role("table", name="Model catalogue")).to_contain_text("needs the model hub or a local copy")
    status = page.get_by_test_id("demo-model-status")
    expect(status).to_have_text("ready")
    facts = page.get_by_test_id("demo-pretrained")
    expect(facts).to_contain_text("REAL SuperTuxKart frames")
    expect(facts).to_contain_text("cornfield_crossing")  # never seen
    shipped = api.get("/api/models").json()["items"][0]
    shot(page, "61-models-shipped")
    page.get_by_role("button", name="Re-train it from scratch").click()
    expect(status).to_have_text("building")
    shot(page, "61b-models-building")
    expect(status).to_have_text("ready", timeout=240_000)
    ready_model_s = time.monotonic() - t0
    job = api.get("/api/models/jobs/demo").json()
    assert job["state"] == "succeeded" and job["recipe"] == QUICK_RECIPE
    assert job["progress"] == 1.0 and job["step"] == job["total_steps"] == QUICK_RECIPE["steps"]
    assert job["log"][0].endswith("demo model build queued") and job["log"][-1].endswith(job["path"])
    assert any("pre-training the tiny PaliGemma from scratch" in ln for ln in job["log"])
    demo = api.get("/api/models").json()["items"][0]
    assert demo["status"] == "ready" and demo["id"] == job["path"] != shipped["id"]
    assert demo["pretrained"]["steps"] == QUICK_RECIPE["steps"] and demo["pretrained"]["tracks"] == ["other_track"]
    assert_accessible(page)
    shot(page, "62-models-ready")

    # 3. a short run launched from the catalogue pick (the family is filled in)
    page.goto(f"/projects/{pid}/runs")
    expect(page.get_by_text("No runs yet")).to_be_visible()
    page.get_by_label("Model family").select_option("smolvlm")
    page.get_by_label("Model from the catalogue").select_option(
        label="Demo: tiny PaliGemma pre-trained on real SuperTuxKart frames")
    expect(page.get_by_label("Model family")).to_have_value("paligemma")
    expect(page.get_by_label("Base model")).to_have_value(re.compile("tiny-paligemma-stk-"))
    # and the run settings the base was pre-trained with: its object order and loss
    expect(page.get_by_label("Object order")).to_have_value("largest_first")
    expect(page.get_by_label("Soft box targets (PaliGemma)")).to_have_value(str(demo["suggested"]["loc_sigma"]).removesuffix(".0"))
    for label, value in (("Max steps", "4"), ("Batch size", "2"), ("Learning rate", "0.001"), ("Max eval images", "4"),
                         ("Max new tokens", "12")):
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_label("Leakage key").fill("track")
    shot(page, "63-launch-from-catalogue")
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url(re.compile(rf"/projects/{pid}/runs/\d+$"))
    r1 = int(page.url.rsplit("/", 1)[1])
    v1 = wait_run(api, r1)
    assert v1["status"] == "succeeded", (v1["error"], v1["traceback"])
    assert v1["metrics"]["val_loss"] and v1["snapshot_sha256"]
    assert {k: v1["config"][k] for k in demo["suggested"]} == demo["suggested"]

    # 4. the run page: configuration, headline, a chart with axes
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded")
    cfg = page.get_by_test_id("run-config")
    expect(cfg).to_contain_text("tiny-paligemma-stk-")
    expect(cfg).to_contain_text("Learning rate")
    expect(cfg).to_contain_text(v1["snapshot_sha256"][:12])
    chart = page.get_by_test_id("loss-chart")
    expect(chart.locator("canvas")).to_have_count(1)
    expect(chart).to_contain_text("step")
    expect(chart).to_contain_text("validation loss")
    expect(page.get_by_label("Log tail")).to_contain_text(re.compile(r"train: step \d+/4 loss \d"))
    shot(page, "64-run-page")

    # 5. launch again with one change: the form comes filled from run 1
    page.get_by_role("link", name="Launch again with changes").click()
    expect(page.get_by_role("status").filter(has_text=f"Filled from run {r1}")).to_be_visible()
    expect(page.get_by_label("Max steps", exact=True)).to_have_value("4")
    expect(page.get_by_label("Leakage key")).to_have_value("track")
    page.get_by_label("Learning rate", exact=True).fill("0.002")
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url(re.compile(rf"/projects/{pid}/runs/\d+$"))
    r2 = int(page.url.rsplit("/", 1)[1])
    assert r2 != r1
    v2 = wait_run(api, r2)
    assert v2["status"] == "succeeded", v2["error"]
    assert v2["config"]["learning_rate"] == 0.002 and v2["config"]["max_steps"] == 4

    # 6. compare the two runs
    page.goto(f"/projects/{pid}/runs")
    expect(page.locator(f"tr[data-run-id='{r1}']")).to_contain_text("LoRA r8 · lr 1.0e-3 · 4 steps")
    page.get_by_label(f"Compare run {r1}").check()
    page.get_by_label(f"Compare run {r2}").check()
    page.get_by_role("link", name="Compare 2 runs").click()
    expect(page.get_by_role("heading", name=f"Compare runs {r1}, {r2}")).to_be_visible()
    expect(page.get_by_role("table", name="Metrics side by side")).to_contain_text(f"Δ vs run {r1}")
    diff = page.get_by_role("table", name="Configuration diff")
    expect(diff.locator("tr[data-differs=true]")).to_have_count(1)
    expect(diff).to_contain_text("learning_rate")
    expect(page.get_by_test_id("loss-chart")).to_contain_text(f"run {r2} validation loss")
    assert_accessible(page)
    shot(page, "65-compare")

    # 7. try it: base and adapter answers side by side
    page.goto(f"/projects/{pid}/runs/{r2}/try")
    page.get_by_role("button", name="Ask both models").click()
    expect(page.get_by_test_id("try-fine-tuned")).to_contain_text(re.compile(r"\d+ boxes · [\d.]+ s"), timeout=60_000)
    expect(page.get_by_test_id("try-base")).to_contain_text(re.compile(r"\d+ boxes"))
    shot(page, "66-try-it")

    # 8. the gallery shows the raw model output before and after
    page.goto(f"/projects/{pid}/runs/{r2}/gallery")
    expect(page.get_by_test_id("raw-output").first).to_be_visible()
    shot(page, "67-gallery-raw")
    print(f"\nstudio up on a fresh data dir: demo project ready after {ready_project_s:.1f} s, demo model (quick "
          f"recipe {QUICK_RECIPE}) ready after {ready_model_s:.1f} s; whole flow {time.monotonic() - t0:.0f} s")
