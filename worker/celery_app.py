"""The Celery app: broker from the settings (embedded default: kombu's SQLAlchemy transport on a
SQLite file in the data dir; production: Redis), queues `gpu` (runs) and `cpu` (imports, exports,
QA generation).

Delivery is at-least-once: late acknowledgement, re-delivery when a worker is lost, one message
prefetched at a time. The run row (backend/runs.py) makes a duplicate harmless and covers what the
broker cannot (the SQLAlchemy transport drops an unacknowledged message when its worker is killed).
No torch import here: the API imports `producer` to send messages.
"""
from __future__ import annotations

from functools import lru_cache

from celery import Celery

from backend.config import Settings, get_settings


def _configure(app: Celery, broker_url: str, prefix: str) -> Celery:
    gpu, cpu = prefix + "gpu", prefix + "cpu"
    app.conf.update(
        broker_url=broker_url,
        task_ignore_result=True,  # results live in the database rows, not in a result back-end
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=cpu,
        task_routes={"studio.execute_run": {"queue": gpu}, "studio.merge_adapter": {"queue": gpu}},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # Redis: a message whose worker vanished comes back after this long (the reaper is faster).
        broker_transport_options={"visibility_timeout": 6 * 3600} if broker_url.startswith("redis") else {},
    )
    return app


@lru_cache(maxsize=16)
def _producer(broker_url: str, prefix: str) -> Celery:
    return _configure(Celery("studio-producer"), broker_url, prefix)


def producer(settings: Settings) -> Celery:
    """A Celery app that only sends (the API's side), one per broker and queue prefix."""
    return _producer(settings.resolved_broker_url(), settings.queue_prefix)


def make_worker_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = _configure(Celery("studio", include=["worker.tasks", "worker.model_tasks", "worker.tryit"]), settings.resolved_broker_url(), settings.queue_prefix)
    app.conf.studio_settings = settings
    return app


celery_app = make_worker_app()
