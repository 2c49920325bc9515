"""Model-build jobs on the worker queue (the demo model today): `build_model(settings, name, recipe)`
re-trains the demo base from scratch (worker.demo_model.ensure_pretrained(scratch=True); the shipped
weights need no job) and reports state, progress, ETA and log lines to the
job's file (backend.catalog.write_job), which the catalogue and the Models page read."""
from __future__ import annotations

import logging
import os
import time
import traceback

from backend.catalog import DEMO_JOB, read_job, write_job
from backend.config import Settings
from worker.celery_app import celery_app

log = logging.getLogger("studio.model_tasks")
LOG_LINES = 200


def build_model(settings: Settings, name: str, recipe: dict | None = None) -> str:
    """Build the job's model (idempotent: a ready model is reported ready at once); the final state."""
    from worker.demo_model import Recipe, ensure_pretrained

    if name != DEMO_JOB:
        raise ValueError(f"unknown model build job {name!r}")
    job = read_job(settings, name) or {}
    if job.get("state") == "running" and job.get("pid") != os.getpid():
        return "running"  # a duplicate message while another worker builds it
    lines = list(job.get("log") or [])
    t0 = time.time()
    last = [0.0]

    def say(msg: str, **values) -> None:
        log.info("model %s: %s", name, msg)
        lines.append(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} {msg}")
        write_job(settings, name, log=lines[-LOG_LINES:], **values)

    first: list = []  # (time, step) of the first reported step: the rate is measured from there

    def progress(step: int, total: int) -> None:
        now = time.time()
        if not first:
            first.append((now, step))
        if now - last[0] < 1.0 and step < total:  # throttled file writes
            return
        last[0] = now
        t1, s1 = first[0]
        eta = (now - t1) / (step - s1) * (total - step) if step > s1 else None
        write_job(settings, name, progress=0.1 + 0.9 * step / total, step=step, total_steps=total,
                  eta_seconds=round(eta, 1) if eta is not None else None)

    say(f"build started (worker pid {os.getpid()})", state="running", pid=os.getpid(), started_at=t0, progress=0.0)
    try:
        r = Recipe.from_overrides({**settings.demo_recipe, **(recipe or {})})
        # reading the frames and the base come first (the bar's first 10 %), then the steps
        path = ensure_pretrained(settings.data_dir, r, scratch=True, frames=settings.demo_frames, log=say,
                                 progress=progress)
    except Exception as e:  # noqa: BLE001 - the job ends with its reason, like a run
        say(f"failed: {type(e).__name__}: {e}", state="failed", error=f"{type(e).__name__}: {e}",
            traceback=traceback.format_exc(), ended_at=time.time(), eta_seconds=None)
        return "failed"
    say(f"ready: {path}", state="succeeded", path=str(path), progress=1.0, eta_seconds=0, ended_at=time.time())
    return "succeeded"


@celery_app.task(name="studio.build_model")
def build_model_task(name: str, recipe: dict | None = None) -> str:
    from worker.device import set_threads

    set_threads()
    return build_model(celery_app.conf.studio_settings, name, recipe)
