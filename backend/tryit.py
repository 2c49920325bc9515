"""Try it: a finished train run's base model and adapter answer one prompt on one image, side by
side. A small job on the gpu queue (worker/tryit.py runs it); its state is a job file under
`<data_dir>/tryit/` (backend.jobfiles). No torch here."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

from backend import jobfiles
from backend.config import Settings
from backend.errors import Conflict, InvalidInput
from backend.models import Run, RunKind, RunStatus

TRY_TASK = "studio.try_run"
MODES = ("detect", "ask")
STALE_SECONDS = 600


def tryit_dir(settings: Settings) -> Path:
    return settings.data_dir / "tryit"


def read(settings: Settings, job_id: str) -> dict | None:
    if not job_id.isalnum():
        return None
    job = jobfiles.read(tryit_dir(settings), job_id)
    if job and job.get("state") in ("queued", "running") and time.time() - job.get("updated", 0) > STALE_SECONDS:
        job = {**job, "state": "failed", "error": "no worker answered within 10 minutes (is `studio worker` running?)"}
    return job


def queue(settings: Settings, run: Run, *, image: Path, image_id: int | None, width: int, height: int, prompt: str,
          mode: str, classes: list[str]) -> dict:
    """Check the run can be tried, write the queued job, send it to the gpu queue."""
    from worker.celery_app import producer  # celery only, no torch

    if run.kind != RunKind.train or run.status != RunStatus.succeeded or not run.adapter_path:
        raise Conflict(f"run {run.id} is a {run.kind.value} run, {run.status.value}: only a succeeded train run "
                       "has an adapter to try")
    if mode not in MODES:
        raise InvalidInput(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    prompt = prompt.strip()
    if mode == "ask" and not prompt:
        raise InvalidInput("prompt: ask a question (or use mode detect)")
    if len(prompt) > 500:
        raise InvalidInput("prompt: at most 500 characters")
    if mode == "detect" and not classes:
        raise InvalidInput("prompt: the project has no labels to detect; ask a question instead")
    job_id = uuid.uuid4().hex
    job = jobfiles.write(tryit_dir(settings), job_id, id=job_id, run_id=run.id, project_id=run.project_id,
                         state="queued", image=str(image), image_id=image_id, width=width, height=height,
                         prompt=prompt, mode=mode, classes=classes, base=None, adapter=None, error=None,
                         queued_at=time.time())
    producer(settings).send_task(TRY_TASK, args=[job_id], queue=settings.queue_prefix + "gpu")
    return public(job)


def public(job: dict) -> dict:
    """The job as the API shows it (no server paths)."""
    return {k: v for k, v in job.items() if k not in ("image", "log")}
