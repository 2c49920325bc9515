"""Celery tasks: thin wrappers that hand a run id to worker.runner. The reaper thread every worker
starts lives here too (it needs a running worker, not a request)."""
from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown

from backend.config import get_settings
from worker.celery_app import celery_app

log = logging.getLogger("studio.tasks")
_stop = threading.Event()


@celery_app.task(name="studio.execute_run")
def execute_run(run_id: int) -> str | None:
    from worker.device import set_threads
    from worker.runner import execute

    set_threads()  # $STUDIO_TORCH_THREADS, else every core
    return execute(run_id, celery_app.conf.studio_settings)


@celery_app.task(name="studio.merge_adapter")
def merge_adapter(run_id: int) -> str:
    from worker.runner import merge_run

    return merge_run(run_id, celery_app.conf.studio_settings)


def reap_once(settings=None) -> dict:
    from backend.db import session_scope
    from backend.runs import reap
    from worker.runner import _sessionmaker

    settings = settings or get_settings()
    with session_scope(_sessionmaker(settings.resolved_database_url())) as s:
        return reap(s, settings)


def _reaper_loop(settings) -> None:
    while True:
        try:
            out = reap_once(settings)
            if any(out.values()):
                log.warning("reaper: %s", out)
        except Exception:  # noqa: BLE001 - the database may be briefly unavailable; try next round
            log.exception("reaper round failed")
        if _stop.wait(settings.reaper_interval_seconds):
            return


@worker_ready.connect
def _start_reaper(**_kw) -> None:
    """On worker start (and every reaper_interval_seconds): runs of dead workers are re-queued."""
    threading.Thread(target=_reaper_loop, args=(celery_app.conf.studio_settings,), name="studio-reaper",
                     daemon=True).start()


@worker_shutdown.connect
def _stop_reaper(**_kw) -> None:
    _stop.set()
