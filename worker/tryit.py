"""Try it, the worker side: the run's base model and its adapter answer the job's prompt on the
job's image (worker.inference.predict, greedy), one after the other; boxes decoded by the family's
codec in image pixels. State and answers go to the job file (backend.tryit)."""
from __future__ import annotations

import logging
import time
import traceback

import torch
from sqlalchemy import select

from backend import jobfiles
from backend.config import Settings
from backend.models import Run
from backend.runs import RunConfig
from backend.tryit import read, tryit_dir
from worker.celery_app import celery_app
from worker.types import Sample

log = logging.getLogger("studio.tryit")


def answer(model, processor, family, sample: Sample, max_new_tokens: int) -> dict:
    from worker.inference import _spans, predict

    t0 = time.perf_counter()
    p = predict(model, processor, family, [sample], batch_size=1, max_new_tokens=max_new_tokens)[0]
    w, h = sample.load_image().size
    boxes = p.boxes if sample.task == "detect" else [s.box for s in _spans(family, p.text, w, h, sample.classes)]
    return {"text": p.text, "boxes": [{"label": b.label, "box": [b.x1, b.y1, b.x2, b.y2], "score": b.score}
                                      for b in boxes], "seconds": round(time.perf_counter() - t0, 2)}


def run_try(settings: Settings, job_id: str) -> str:
    from worker.runner import _RUN_LOCK, _sessionmaker
    from worker.training import load_with_adapter

    folder = tryit_dir(settings)
    job = read(settings, job_id)
    if job is None or job.get("state") != "queued":
        return "skipped"  # unknown, or a duplicate message of a job already taken
    jobfiles.write(folder, job_id, state="running", started_at=time.time())
    try:
        with _sessionmaker(settings.resolved_database_url())() as s:
            run = s.scalar(select(Run).where(Run.id == job["run_id"]))
            cfg, adapter = RunConfig.model_validate(run.config), run.adapter_path
        from worker.families import get_family

        family = get_family(cfg.family)
        sample = Sample(image=job["image"], task="detect" if job["mode"] == "detect" else "vqa",
                        classes=list(job["classes"]), question=job["prompt"] or None, image_id=job.get("image_id"))
        with _RUN_LOCK:  # one model load at a time per process (see worker.runner)
            model, processor = family.load(cfg.base_model, dtype=torch.float32)
            base = answer(model, processor, family, sample, cfg.max_new_tokens)
            del model
            jobfiles.write(folder, job_id, base=base)
            model, processor, family = load_with_adapter(adapter, cfg.base_model, device="cpu")
            tuned = answer(model, processor, family, sample, cfg.max_new_tokens)
        jobfiles.write(folder, job_id, state="succeeded", adapter=tuned, ended_at=time.time(),
                       prompt_used=family.prompt(sample))
        return "succeeded"
    except Exception as e:  # noqa: BLE001 - the job ends with its reason
        log.exception("try-it %s failed", job_id)
        jobfiles.write(folder, job_id, state="failed", error=f"{type(e).__name__}: {e}",
                       traceback=traceback.format_exc(), ended_at=time.time())
        return "failed"


@celery_app.task(name="studio.try_run")
def try_run_task(job_id: str) -> str:
    from worker.device import set_threads

    set_threads()
    return run_try(celery_app.conf.studio_settings, job_id)

