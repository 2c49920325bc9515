"""Real Celery worker processes (`studio worker`) on the embedded broker (kombu SQLAlchemy transport
on SQLite) and on Redis: runs complete, a SIGKILLed worker's run resumes from its last checkpoint
on a new worker, a queued run survives a worker kill and a broker restart."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.auth import bootstrap_admin
from backend.config import Settings
from backend.db import migrate, session_scope
from backend.runs import create_run
from tests.runs.conftest import config, make_project, wait_for

ROOT = Path(__file__).resolve().parents[2]
FAST = {"run_lease_seconds": 3.0, "reaper_interval_seconds": 1.0, "queued_resend_seconds": 4.0}


def env_of(settings: Settings) -> dict:
    env = {**os.environ, "STUDIO_DATA_DIR": str(settings.data_dir), "DATABASE_URL": settings.resolved_database_url(),
           "CELERY_BROKER_URL": settings.resolved_broker_url(), "STUDIO_QUEUE_PREFIX": settings.queue_prefix,
           "STUDIO_TORCH_THREADS": "1"}
    env.update({f"STUDIO_{k.upper()}": str(v) for k, v in FAST.items()})
    return env


@contextmanager
def worker(settings: Settings, log: Path):
    """`studio worker --queues gpu` in its own process group; SIGKILLed (with its children) at exit."""
    with open(log, "ab") as out:
        p = subprocess.Popen([sys.executable, "-m", "backend.cli", "worker", "--queues", "gpu"], env=env_of(settings),
                             cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield p
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


@contextmanager
def studio(settings: Settings):
    from backend.main import create_app

    migrate(settings.resolved_database_url())
    app = create_app(settings)
    with session_scope(app.state.sessionmaker) as s:
        token = bootstrap_admin(s, settings.data_dir)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield app, c
    app.state.engine.dispose()


def launch(app, pid: int, **cfg) -> int:
    with session_scope(app.state.sessionmaker) as s:
        return create_run(s, app.state.settings, project_id=pid, user_id=None, kind="train", config=cfg).id


def status_of(client, run_id: int) -> dict:
    return client.get(f"/api/runs/{run_id}").json()


def done(client, run_id: int):
    v = status_of(client, run_id)
    return v if v["status"] in ("succeeded", "failed", "cancelled") else None


def embedded(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'studio.db'}",
                    queue_prefix=f"t{uuid.uuid4().hex[:6]}-", **FAST)


def queue_then_work(settings: Settings, tmp_path: Path, model: str) -> dict:
    """Queue a train run before any worker exists, start a real worker, return the ended run; it
    must have succeeded (the worker's log tail is shown otherwise)."""
    with studio(settings) as (app, client):
        pid = make_project(client, settings, app.state.sessionmaker)
        rid = launch(app, pid, **config(model))
        with worker(settings, tmp_path / "worker.log"):
            v = wait_for(lambda: done(client, rid), 180, 0.5, "the run to end")
    assert v["status"] == "succeeded", (v["error"], (tmp_path / "worker.log").read_text()[-3000:])
    return v


def test_embedded_broker_worker_runs_a_queued_run(tmp_path, tiny_paligemma):
    """The message is queued before any worker exists (the broker is a file); a worker started later
    runs it to the end."""
    settings = embedded(tmp_path)
    assert settings.resolved_broker_url().startswith("sqla+sqlite:///")
    v = queue_then_work(settings, tmp_path, tiny_paligemma)
    assert v["attempts"] == 1 and v["metrics"]["table"]
    assert v["worker_id"] and v["worker_id"].split(":")[0] == socket.gethostname()


def test_sigkill_mid_training_resumes_from_the_last_checkpoint(tmp_path, tiny_paligemma):
    """SIGKILL the worker after a checkpoint: the lease expires, the reaper re-queues the run, a new
    worker resumes it from that checkpoint (not from step 0) and it succeeds. A second run queued
    behind it (its message possibly lost with the killed worker) completes too."""
    settings = embedded(tmp_path)
    steps, every = 150, 5
    log = tmp_path / "worker.log"
    with studio(settings) as (app, client):
        pid = make_project(client, settings, app.state.sessionmaker)
        long_run = launch(app, pid, **config(tiny_paligemma, max_steps=steps, checkpoint_every=every, batch_size=1))
        short_run = launch(app, pid, **config(tiny_paligemma, max_steps=2))
        with worker(settings, log):
            wait_for(lambda: status_of(client, long_run)["step"] >= 2 * every, 180, 0.1, "training steps")
        killed_at = status_of(client, long_run)
        assert killed_at["status"] == "running" and killed_at["step"] < steps, "killed too late to test a resume"
        with worker(settings, log):
            v = wait_for(lambda: done(client, long_run), 240, 0.5, "the resumed run to end")
            w = wait_for(lambda: done(client, short_run), 120, 0.5, "the queued run to end")
    assert v["status"] == "succeeded", (v["error"], log.read_text()[-3000:])
    assert w["status"] == "succeeded", w["error"]
    assert v["attempts"] == 2
    assert any("lost (no heartbeat since" in line for line in v["log_tail"])
    hist = v["loss_history"]
    assert [h["step"] for h in hist] == list(range(1, steps + 1))  # continuous: nothing lost, nothing twice
    resumed = [h["step"] for h in hist if h["attempt"] == 2]
    ck = resumed[0] - 1
    assert ck % every == 0 and 2 * every <= ck <= killed_at["step"], (ck, killed_at["step"])
    assert any(f"resuming from checkpoint step-{ck:07d}" in line for line in v["log_tail"])
    assert v["metrics"]["before"] and v["metrics"]["after"]  # base evaluation kept, adapter evaluated


def _redis_up(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


def test_worker_on_the_shared_redis(tmp_path, tiny_paligemma):
    url = os.environ.get("STUDIO_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    if not _redis_up(url):
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {url} (CI must start it)")
        pytest.skip(f"Redis is not reachable at {url}")
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'studio.db'}",
                        celery_broker_url=url, queue_prefix=f"t{uuid.uuid4().hex[:8]}-", **FAST)
    queue_then_work(settings, tmp_path, tiny_paligemma)  # asserts the run succeeded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def redis_server(port: int, d: Path):
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
                          "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _redis_up(f"redis://127.0.0.1:{port}/0"), 10, 0.1, "redis-server")
        yield p
    finally:
        p.terminate()
        p.wait(10)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_redis_restart_loses_no_queued_run(tmp_path, tiny_paligemma):
    port = _free_port()
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'studio.db'}",
                        celery_broker_url=f"redis://127.0.0.1:{port}/0", queue_prefix="q-",
                        **{**FAST, "queued_resend_seconds": 3600})  # the message itself must survive
    (tmp_path / "redis").mkdir()
    with studio(settings) as (app, client):
        pid = make_project(client, settings, app.state.sessionmaker)
        with redis_server(port, tmp_path / "redis"):
            rid = launch(app, pid, **config(tiny_paligemma))
            import redis

            assert redis.Redis(port=port).llen("q-gpu") == 1
        with redis_server(port, tmp_path / "redis"):  # restarted from its append-only file
            assert redis.Redis(port=port).llen("q-gpu") == 1
            with worker(settings, tmp_path / "worker.log"):
                v = wait_for(lambda: done(client, rid), 180, 0.5, "the run to end")
    assert v["status"] == "succeeded", (v["error"], (tmp_path / "worker.log").read_text()[-3000:])
    assert v["attempts"] == 1


def test_studio_up_serves_the_api_and_a_worker(tmp_path, tiny_paligemma):
    """`studio up` on the embedded default: the URL and token are printed, a run launched over HTTP is
    executed by the worker it started, and stopping `up` stops that worker too."""
    import httpx

    port = _free_port()
    settings = embedded(tmp_path)
    env = {**env_of(settings), "STUDIO_PORT": str(port)}
    env.pop("CELERY_BROKER_URL")  # the embedded default
    out = open(tmp_path / "up.log", "wb")
    # --empty: no demo project, so the one worker is not busy building the demo model (tests/models covers that)
    p = subprocess.Popen([sys.executable, "-m", "backend.cli", "up", "--empty"], env=env, cwd=ROOT, stdout=out,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        text = wait_for(lambda: (t := (tmp_path / "up.log").read_text()) and "admin API token" in t and t, 60, 0.2,
                        "the token")
        assert f"http://127.0.0.1:{port}/" in text
        token = text.split("admin API token: ")[1].split()[0]
        base = f"http://127.0.0.1:{port}/api"
        h = {"Authorization": f"Bearer {token}"}
        wait_for(lambda: _get(httpx, f"{base}/health") == 200, 30, 0.2, "the API")
        with studio(settings) as (app, client):  # same database: build the project
            pid = make_project(client, settings, app.state.sessionmaker)
        r = httpx.post(f"{base}/projects/{pid}/runs", headers=h, json={"kind": "train", "config": config(tiny_paligemma)})
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        v = wait_for(lambda: (j := httpx.get(f"{base}/runs/{rid}", headers=h).json())["status"]
                     in ("succeeded", "failed") and j, 180, 0.5, "the run")
        assert v["status"] == "succeeded", v["error"]
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) is not None
        wait_for(lambda: not _children_alive(p.pid), 40, 0.5, "the worker to stop")
    finally:
        if p.poll() is None or _children_alive(p.pid):
            os.killpg(p.pid, signal.SIGKILL)  # our own process group only
        p.wait(10)
        out.close()


def _get(httpx, url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def _children_alive(pgid: int) -> bool:
    """Any process left in the process group `up` led (its worker)."""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
