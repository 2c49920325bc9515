"""The lease and the reaper, in-process on SQLite and PostgreSQL: an expired lease re-queues the run
(attempts left) or fails it with the reason; a worker that lost its lease cannot write any more; a
duplicate delivery cannot claim twice; queued runs nobody claimed are re-sent."""
from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import update

from backend.db import session_scope
from backend.models import Run
from backend.runs import now, reap
from tests.runs.conftest import config
from worker.lease import Lease


def launch(client, pid, model, **kw) -> int:
    r = client.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": config(model, **kw)})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_expired_lease_requeues_then_fails(client, app, project, tiny_paligemma):
    sm = app.state.sessionmaker
    rid = launch(client, project, tiny_paligemma)
    first = Lease(sm, rid, "ghost-1", 0.05)
    assert first.claim()
    assert not Lease(sm, rid, "dup", 60).claim()  # a duplicate message: the claim is atomic
    time.sleep(0.1)
    v = client.get(f"/api/runs/{rid}").json()  # GET reaps this run cheaply
    assert v["status"] == "queued" and v["worker_id"] is None
    assert "worker ghost-1 lost (no heartbeat since" in v["log_tail"][-1]
    assert not first.renew() and first.lost  # the old worker learns it lost the run
    with session_scope(sm) as s:
        assert s.execute(first.guard(update(Run)).values(step=99)).rowcount == 0  # and cannot write
    for k in (2, 3):  # max_attempts = 3
        lease = Lease(sm, rid, f"ghost-{k}", 0.05)
        assert lease.claim()
        time.sleep(0.1)
        with session_scope(sm) as s:
            out = reap(s, app.state.settings)
        assert out[{2: "requeued", 3: "failed"}[k]] == 1
    v = client.get(f"/api/runs/{rid}").json()
    assert v["status"] == "failed" and v["attempts"] == 3 and v["ended_at"]
    assert v["error"].startswith("worker lost (no heartbeat since") and "after 3 attempt(s)" in v["error"]


def test_live_lease_is_left_alone_and_lost_messages_are_resent(client, app, project, tiny_paligemma):
    sm = app.state.sessionmaker
    settings = app.state.settings
    running, queued = launch(client, project, tiny_paligemma), launch(client, project, tiny_paligemma)
    lease = Lease(sm, running, "alive", 0.6)
    assert lease.claim()
    lease.start()  # the heartbeat renews it every 0.2 s
    try:
        with session_scope(sm) as s:
            assert reap(s, settings) == {"requeued": 0, "failed": 0, "resent": 0}  # nothing stale yet
            # the queued run's message was sent long ago and nobody claimed it: re-send (once per back-off)
            s.execute(update(Run).where(Run.id == queued).values(
                enqueued_at=now() - timedelta(seconds=settings.queued_resend_seconds + 5)))
        with session_scope(sm) as s:
            assert reap(s, settings)["resent"] == 1
        with session_scope(sm) as s:
            assert reap(s, settings)["resent"] == 0
            assert s.get(Run, queued).sends == 2
        time.sleep(1.0)  # longer than the lease: only the heartbeat keeps it
        assert client.get(f"/api/runs/{running}").json()["status"] == "running"
    finally:
        lease.stop()


def test_merge_adapter(client, app, project, tiny_paligemma):
    from worker.families import get_family
    from worker.runner import execute, merge_run

    rid = launch(client, project, tiny_paligemma, max_steps=2)
    assert client.post(f"/api/runs/{rid}/merge").status_code == 409  # nothing to merge yet
    assert execute(rid, app.state.settings) == "succeeded"
    r = client.post(f"/api/runs/{rid}/merge")  # queued for a gpu worker
    assert r.status_code == 202 and r.json()["queued"]
    out = merge_run(rid, app.state.settings)  # what that worker task runs
    model, _ = get_family("paligemma").load(out)
    assert model is not None
    v = client.get(f"/api/runs/{rid}").json()
    assert v["merged"] and "merged the adapter" in v["log_tail"][-1]
