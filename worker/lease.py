"""The lease a worker holds on the run it executes: an atomic claim, a heartbeat thread that renews
it, and guarded writes (they only land while this worker still holds the run).

If the heartbeat stalls past the lease (a killed or frozen worker), the reaper (backend.runs.reap)
hands the run to another worker; this worker's next guarded write then raises LeaseLost and it
stops, so two workers never both write one run.
"""
from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import timedelta

from sqlalchemy import func, update
from sqlalchemy.orm import Session, sessionmaker

from backend.models import Run, RunStatus
from backend.runs import now


class LeaseLost(Exception):
    """Another worker owns the run now (or it was failed by the reaper)."""


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    def __init__(self, sm: sessionmaker[Session], run_id: int, worker_id: str, seconds: float):
        self.sm, self.run_id, self.worker_id, self.seconds = sm, run_id, worker_id, seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def _expiry(self):
        t = now()
        return t, t + timedelta(seconds=self.seconds)

    def claim(self) -> bool:
        """queued -> running for this worker, in one UPDATE: of two deliveries of one message (or a
        re-sent one) exactly one wins; a cancelled or finished run is not claimed."""
        t, exp = self._expiry()
        with self.sm() as s:
            res = s.execute(update(Run).where(Run.id == self.run_id, Run.status == RunStatus.queued).values(
                status=RunStatus.running, worker_id=self.worker_id, heartbeat_at=t, lease_expires_at=exp,
                attempts=Run.attempts + 1, started_at=func.coalesce(Run.started_at, t), phase="starting",
                version=Run.version + 1))
            s.commit()
            return res.rowcount == 1

    def guard(self, stmt):
        """`stmt` (an UPDATE of runs) restricted to this worker's live lease."""
        return stmt.where(Run.id == self.run_id, Run.worker_id == self.worker_id, Run.status == RunStatus.running)

    def renew(self) -> bool:
        t, exp = self._expiry()
        with self.sm() as s:
            res = s.execute(self.guard(update(Run)).values(heartbeat_at=t, lease_expires_at=exp))
            s.commit()
        if res.rowcount == 0:
            self.lost = True
        return not self.lost

    def _beat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.renew():
                    return
            except Exception:  # noqa: BLE001 - a DB hiccup: try again next beat; the lease has slack
                pass

    def start(self) -> Lease:
        self._thread = threading.Thread(target=self._beat, name=f"lease-run-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
