"""Benchmark: the API under load on PostgreSQL: 50 concurrent clients for 60 s against a real server.

A uvicorn server (a subprocess, the production app) on a fresh PostgreSQL database seeded with one
project of N images (default 3,000) x 5 boxes and its "counting" QA pairs. 50 client threads then
loop over a mix: grid pages (40%), one image with its boxes (25%), box edits with versions (15%:
read the box, PATCH it with the version read, on a pool of 20 hot boxes so writers collide), QA
listing (10%) and polling a run (10%) while a writer thread plays the worker, writing the run's
progress 10 times a second.

Prints p50 / p95 per endpoint, status counts, and lost updates: for every hot box, the PATCHes that
got 200 against the versions the box went through (each 200 must bump it exactly once), and the
progress writes against the run's step. Targets: 0 5xx, 0 lost updates, grid page p95 < 50 ms.

    python bench/bench_load.py [--clients 50] [--seconds 60] [--n 3000]

A benchmark, not a test: it prints numbers and asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from sqlalchemy import create_engine, insert, select, update  # noqa: E402

from backend.db import migrate  # noqa: E402
from backend.models import Box, Image, Run, RunKind, RunStatus  # noqa: E402
from pgtemp import temp_database  # noqa: E402

MIX = [("grid", 40), ("image", 25), ("box_edit", 15), ("qa_list", 10), ("run_poll", 10)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(url: str, data_dir: Path, n: int) -> tuple[str, int, list[int], int]:
    """(admin token, project id, hot box ids, run id)."""
    from backend.auth import bootstrap_admin
    from backend.db import make_engine, make_sessionmaker, session_scope
    from backend.models import Label, Membership, Project, Role, User

    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    with session_scope(sm) as s:
        token = bootstrap_admin(s, data_dir)
    with session_scope(sm) as s:
        admin = s.scalar(select(User).where(User.is_admin.is_(True)))
        p = Project(name="load", description="", task_kinds=["detection"])
        s.add(p)
        s.flush()
        s.add(Membership(project_id=p.id, user_id=admin.id, role=Role.admin))
        labels = [Label(project_id=p.id, name=n_, color="#e6194b") for n_ in ("kart", "banana", "nitro")]
        s.add_all(labels)
        s.flush()
        pid, lids = p.id, [lab.id for lab in labels]
    now = datetime.now(timezone.utc)
    with engine.begin() as c:
        c.execute(insert(Image), [
            {"project_id": pid, "sha256": f"{i:064x}", "file_name": f"frame_{i:06d}.jpg", "ext": "jpg",
             "width": 640, "height": 400, "split": ("train", "val", "test")[i % 3], "status": "unlabeled",
             "meta": {"track": "lighthouse"}, "created_at": now} for i in range(n)])
        ids = c.execute(select(Image.id).where(Image.project_id == pid).order_by(Image.id)).scalars().all()
        c.execute(insert(Box), [
            {"image_id": iid, "label_id": lids[j % 3], "x1": 10.0 + 60 * j, "y1": 20.0, "x2": 50.0 + 60 * j,
             "y2": 80.0, "source": "import", "attributes": {}, "version": 1, "updated_at": now}
            for iid in ids for j in range(5)])
        hot = c.execute(select(Box.id).where(Box.image_id.in_(ids[:4])).order_by(Box.id)).scalars().all()
        run_id = c.execute(insert(Run).values(
            project_id=pid, kind=RunKind.train, status=RunStatus.running, config={}, started_at=now,
            worker_id="bench", heartbeat_at=now, lease_expires_at=now + timedelta(hours=1), total_steps=10**6,
            phase="train").returning(Run.id)).scalar_one()
    engine.dispose()
    return token, pid, hot, run_id


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.codes: Counter = Counter()
        self.box_ok: Counter = Counter()

    def add(self, name: str, dt: float, code: int) -> None:
        with self.lock:
            self.times[name].append(dt)
            self.codes[(name, code)] += 1


def client_loop(base: str, token: str, pid: int, n_images: int, image_ids: list[int], hot: list[int], run_id: int,
                stop: float, stats: Stats, seed_: int) -> None:
    rng = random.Random(seed_)
    names, weights = zip(*MIX)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        def timed(name: str, method: str, url: str, **kw) -> httpx.Response:
            t = time.perf_counter()
            r = c.request(method, url, **kw)
            stats.add(name, time.perf_counter() - t, r.status_code)
            return r

        while time.time() < stop:
            kind = rng.choices(names, weights)[0]
            if kind == "grid":
                timed("grid page", "GET", f"/api/projects/{pid}/images",
                      params={"offset": rng.randrange(0, max(1, n_images - 50)), "limit": 50})
            elif kind == "image":
                timed("image read", "GET", f"/api/images/{rng.choice(image_ids)}")
            elif kind == "box_edit":
                bid = rng.choice(hot)
                r = timed("box read", "GET", f"/api/boxes/{bid}")
                if r.status_code == 200:
                    v = r.json()["version"]
                    r = timed("box patch", "PATCH", f"/api/boxes/{bid}",
                              json={"version": v, "x1": 10.0 + rng.random() * 5})
                    if r.status_code == 200:
                        with stats.lock:
                            stats.box_ok[bid] += 1
            elif kind == "qa_list":
                timed("qa list", "GET", f"/api/projects/{pid}/qa", params={"offset": rng.randrange(0, 500), "limit": 50})
            else:
                timed("run poll", "GET", f"/api/runs/{run_id}")


def progress_writer(url: str, run_id: int, stop: float, written: list[int]) -> None:
    """Plays the worker: a step of progress, a log line and a heartbeat, 10 times a second."""
    engine = create_engine(url)
    while time.time() < stop:
        now = datetime.now(timezone.utc)
        with engine.begin() as c:
            c.execute(update(Run).where(Run.id == run_id).values(
                step=Run.step + 1, version=Run.version + 1, progress=(written[0] + 1) / 10**6, heartbeat_at=now,
                lease_expires_at=now + timedelta(hours=1), log_tail=[f"{now.isoformat()} step {written[0] + 1}"]))
        written[0] += 1
        time.sleep(0.1)
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--n", type=int, default=3000)
    args = ap.parse_args()

    with temp_database(prefix="studio_load") as url:
        run_load(args, url)


def run_load(args, url: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_load_"))
    server = None
    try:
        migrate(url)
        t0 = time.perf_counter()
        token, pid, hot, run_id = seed(url, tmp, args.n)
        port = _free_port()
        env = {**os.environ, "DATABASE_URL": url, "STUDIO_DATA_DIR": str(tmp), "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "backend.main:create_app", "--factory",
                                   "--port", str(port), "--log-level", "warning"], env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600) as c:
            r = c.post(f"/api/projects/{pid}/qa/generate", json={"families": ["counting"]})
            assert r.status_code == 200, r.text
            image_ids = [it["id"] for it in c.get(f"/api/projects/{pid}/images", params={"limit": 500}).json()["items"]]
        print(f"seeded {args.n} images x 5 boxes, {r.json()['total']} QA pairs in {time.perf_counter() - t0:.1f} s; "
              f"{args.clients} clients for {args.seconds:.0f} s against {base} (PostgreSQL)")

        def phase(clients: int, seconds: float, seed0: int) -> tuple[Stats, list[int]]:
            stats, written = Stats(), [0]
            stop = time.time() + seconds
            threads = [threading.Thread(target=client_loop, args=(base, token, pid, args.n, image_ids, hot, run_id,
                                                                  stop, stats, seed0 + i)) for i in range(clients)]
            threads.append(threading.Thread(target=progress_writer, args=(url, run_id, stop, written)))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return stats, written

        # Baseline in the same process: one client, same mix, same progress writer.
        base_stats, base_written = phase(1, min(10.0, args.seconds), 10_000)
        box_ok0 = Counter(base_stats.box_ok)
        eng = create_engine(url)
        with eng.connect() as c:
            v0 = dict(c.execute(select(Box.id, Box.version).where(Box.id.in_(hot))).all())
            step0 = c.scalar(select(Run.step).where(Run.id == run_id))
        eng.dispose()
        stats, written = phase(args.clients, args.seconds, 0)

        def pct(ts: list[float], q: float) -> float:
            ts = sorted(ts)
            return ts[min(len(ts) - 1, int(q * len(ts)))] * 1000

        print(f"\n{'endpoint':<12} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'1-client p95':>13} {'ratio':>6}   statuses")
        for ep in sorted(stats.times):
            ts = stats.times[ep]
            b95 = pct(base_stats.times.get(ep, [float("nan")]), 0.95)
            codes = ", ".join(f"{code}: {k}" for (e, code), k in sorted(stats.codes.items()) if e == ep)
            print(f"{ep:<12} {len(ts):>8} {statistics.median(ts) * 1000:>8.1f} {pct(ts, 0.95):>8.1f} {b95:>13.1f} "
                  f"{pct(ts, 0.95) / b95:>6.1f}   {codes}")
        base_total = sum(base_stats.codes.values())
        print(f"1 client: {base_total} requests ({base_total / min(10.0, args.seconds):.0f}/s), "
              f"{sum(k for (_, code), k in base_stats.codes.items() if code >= 500)} with status >= 500")
        total = sum(stats.codes.values())
        five = sum(k for (_, code), k in stats.codes.items() if code >= 500)
        print(f"\n{total} requests ({total / args.seconds:.0f}/s), {five} with status >= 500")

        eng = create_engine(url)
        with eng.connect() as c:
            versions = dict(c.execute(select(Box.id, Box.version).where(Box.id.in_(hot))).all())
            step = c.scalar(select(Run.step).where(Run.id == run_id))
        eng.dispose()
        lost = sum(max(0, stats.box_ok[b] - (versions[b] - v0[b])) for b in hot)
        extra = sum(max(0, (versions[b] - v0[b]) - stats.box_ok[b]) for b in hot)
        print(f"box edits: {sum(stats.box_ok.values())} accepted PATCHes on {len(hot)} hot boxes, "
              f"{sum(versions[b] - v0[b] for b in hot)} version bumps: lost updates {lost}, unexplained bumps {extra}; "
              f"409 (stale, expected) {stats.codes[('box patch', 409)]}")
        print(f"run progress: {written[0]} writes, step {step - step0}: lost {written[0] - (step - step0)}")
        print(f"(baseline phase: {sum(box_ok0.values())} box PATCHes, {base_written[0]} progress writes; "
              f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
