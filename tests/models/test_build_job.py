"""Building the demo model is a job on the worker queue like a run: queued (the catalogue says it
is being prepared), built by a real `studio worker` with progress and a log, then listed ready with
what it was pre-trained on. The recipe is shortened through the real setting (STUDIO_DEMO_RECIPE)."""
from __future__ import annotations

import dataclasses
import json

from backend.config import Settings
from tests.runs.conftest import wait_for
from tests.runs.test_worker import FAST, env_of, studio, worker  # noqa: F401

QUICK = {"steps": 3, "n_images": 24, "batch_size": 4}


def test_demo_model_build_is_a_queued_job_with_progress_log_and_catalogue_entry(tmp_path, monkeypatch):
    import uuid

    monkeypatch.setenv("STUDIO_DEMO_RECIPE", json.dumps(QUICK))
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'studio.db'}",
                        queue_prefix=f"t{uuid.uuid4().hex[:6]}-", **FAST)
    assert settings.demo_recipe == QUICK  # the setting, read from the environment
    with studio(settings) as (app, client):
        r = client.post("/api/models/demo/build")
        assert r.status_code == 202, r.text
        assert r.json()["state"] == "queued" and r.json()["recipe"] == QUICK
        demo = client.get("/api/models").json()["items"][0]
        assert demo["status"] == "building" and demo["note"].startswith("being prepared (queued, 0 %")
        assert client.post("/api/models/demo/build").json()["queued_at"] == r.json()["queued_at"]  # not twice
        log = tmp_path / "worker.log"
        with worker(settings, log):
            job = wait_for(lambda: (j := client.get("/api/models/jobs/demo").json())["state"] in
                           ("succeeded", "failed") and j, 300, 1.0, "the build to end")
        assert job["state"] == "succeeded", (job.get("error"), log.read_text()[-3000:])
        assert job["progress"] == 1.0 and job["total_steps"] == 3 and job["step"] == 3
        assert any("pre-training the tiny PaliGemma" in ln for ln in job["log"]) and job["log"][-1].endswith(job["path"])
        demo = client.get("/api/models").json()["items"][0]
        assert demo["status"] == "ready" and demo["id"] == job["path"]
        assert demo["pretrained"]["steps"] == 3 and "SYNTHETIC" in demo["pretrained"]["data"]
        assert demo["parameters"] > 500_000 and demo["family"] == "paligemma"


def test_quick_recipe_names_real_recipe_fields():
    from worker.demo_model import Recipe

    assert set(QUICK) <= {f.name for f in dataclasses.fields(Recipe)}
