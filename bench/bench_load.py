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

What it measures: the clients are closed-loop threads on the same machine as the server and the
database. With N clients, a mean think time Z between actions (--think; 0 = no pause, as issue #11
defines the load) and a throughput X, Little's law fixes the mean latency: R = N / X - Z. So with
Z = 0 latency is set by how many requests per second the machine can do, not by any one request;
the script prints X, N / X - Z, the CPU each request cost (server, PostgreSQL, the client threads)
and the throughput the target would need, to tell a slow request from a saturated machine.

    python bench/bench_load.py [--clients 50] [--seconds 60] [--n 3000] [--think 0] [--workers 1]

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
                stop: float, stats: Stats, seed_: int, think: float = 0.0) -> None:
    """One user: an action from MIX, then (think > 0) an exponential pause of mean `think` seconds."""
    rng = random.Random(seed_)
    names, weights = zip(*MIX)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        def timed(name: str, method: str, url: str, **kw) -> httpx.Response:
            t = time.perf_counter()
            r = c.request(method, url, **kw)
            stats.add(name, time.perf_counter() - t, r.status_code)
            return r

        while time.time() < stop:
            if think > 0:
                time.sleep(min(rng.expovariate(1 / think), max(0.0, stop - time.time())))
                if time.time() >= stop:
                    break
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


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _pg_pids(database: str) -> list[int]:
    """The PostgreSQL backends serving `database` (their title names it; other databases' work is not ours)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "comm").read_text().strip() == "postgres" and \
                        f" {database} ".encode() in (p / "cmdline").read_bytes():
                    out.append(int(p.name))
            except OSError:
                pass
    return out


class CpuMeter:
    """CPU seconds spent over a phase by the server (with its worker processes), PostgreSQL (the
    backends of the bench's database) and this process (the client threads), and the machine's busy
    cores (everyone's: other jobs on the machine count there).

    Backends come and go (a pool's overflow connections are closed when returned), so a thread samples
    them 5 times a second and keeps each one's last reading; it also counts the backends started."""

    def __init__(self, server_pid: int, database: str):
        self.server = [server_pid, *_children(server_pid)]
        self.database = database

    @staticmethod
    def _busy() -> tuple[float, float]:
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = v[3] + v[4]
        return (sum(v) - idle) / _TICK, sum(v) / _TICK

    def _pg(self) -> dict[int, float]:
        return {p: _proc_cpu(p) for p in _pg_pids(self.database)}

    def start(self) -> None:
        self.pg0 = self._pg()
        self.pg_last = dict(self.pg0)
        self.server0, self.client0, self.busy0 = (sum(_proc_cpu(p) for p in self.server), time.process_time(),
                                                  self._busy())
        self.stop = threading.Event()

        def sample() -> None:
            while not self.stop.wait(0.2):
                self.pg_last.update({p: v for p, v in self._pg().items() if v > 0 or p not in self.pg_last})

        self.sampler = threading.Thread(target=sample, daemon=True)
        self.sampler.start()

    def finish(self) -> dict[str, float]:
        self.stop.set()
        self.sampler.join()
        self.pg_last.update(self._pg())
        busy = self._busy()
        total = busy[1] - self.busy0[1]
        return {"server": sum(_proc_cpu(p) for p in self.server) - self.server0,
                "pg": sum(v - self.pg0.get(p, 0.0) for p, v in self.pg_last.items()),
                "pg_new": len(set(self.pg_last) - set(self.pg0)),
                "client": time.process_time() - self.client0,
                "busy_cores": (busy[0] - self.busy0[0]) / total * (os.cpu_count() or 1) if total else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--think", type=float, default=0.0,
                    help="mean think time (s, exponential) of each client between actions; 0 = closed loop, no pause")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
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
                                   "--port", str(port), "--log-level", "warning", "--workers", str(args.workers)],
                                  env=env, cwd=ROOT)
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
        # Statistics as autovacuum leaves them a minute after a bulk load: without them the planner
        # takes 15,000 fresh QA rows for 60 and sorts them all for each QA page (~10 ms vs 0.5 ms).
        eng = create_engine(url, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
        eng.dispose()
        print(f"seeded {args.n} images x 5 boxes, {r.json()['total']} QA pairs in {time.perf_counter() - t0:.1f} s; "
              f"{args.clients} clients (think {args.think:g} s) for {args.seconds:.0f} s against {base} "
              f"(PostgreSQL, {args.workers} uvicorn worker{'s' if args.workers > 1 else ''}); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        meter = CpuMeter(server.pid, url.rsplit("/", 1)[1])

        def phase(clients: int, seconds: float, seed0: int, think: float) -> tuple[Stats, list[int], dict]:
            stats, written = Stats(), [0]
            stop = time.time() + seconds
            threads = [threading.Thread(target=client_loop, args=(base, token, pid, args.n, image_ids, hot, run_id,
                                                                  stop, stats, seed0 + i, think))
                       for i in range(clients)]
            threads.append(threading.Thread(target=progress_writer, args=(url, run_id, stop, written)))
            meter.start()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return stats, written, meter.finish()

        # Baseline in the same process: one client, same mix, same progress writer, no think time
        # (the unloaded service time).
        base_stats, base_written, base_cpu = phase(1, min(10.0, args.seconds), 10_000, 0.0)
        box_ok0 = Counter(base_stats.box_ok)
        eng = create_engine(url)
        with eng.connect() as c:
            v0 = dict(c.execute(select(Box.id, Box.version).where(Box.id.in_(hot))).all())
            step0 = c.scalar(select(Run.step).where(Run.id == run_id))
        eng.dispose()
        stats, written, cpu = phase(args.clients, args.seconds, 0, args.think)

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
        print_capacity(args, base_stats, base_cpu, min(10.0, args.seconds), stats, cpu)

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


def print_capacity(args, base_stats: Stats, base_cpu: dict, base_seconds: float, stats: Stats, cpu: dict) -> None:
    """Throughput, Little's law and CPU per request: is the latency the request's or the queue's?"""
    n, z = args.clients, args.think
    print(f"\n{'phase':<22} {'req/s':>7} {'mean ms':>8} {'N/X-Z ms':>9} {'CPU ms/req: server':>19} {'postgres':>9} "
          f"{'clients':>8} {'busy cores':>11} {'PG conns opened':>16}")
    for name, st, c, secs, clients, think in (("1 client", base_stats, base_cpu, base_seconds, 1, 0.0),
                                               (f"{n} clients, think {z:g} s", stats, cpu, args.seconds, n, z)):
        reqs = sum(st.codes.values())
        x = reqs / secs
        # Little's law counts actions, not requests: a box edit is two requests and one think.
        actions = reqs - sum(k for (e, _), k in st.codes.items() if e == "box patch")
        mean = statistics.fmean(t for ts in st.times.values() for t in ts) * 1000
        little = (clients / (actions / secs) - think) * 1000 / (reqs / actions) if actions else float("nan")
        print(f"{name:<22} {x:>7.0f} {mean:>8.1f} {little:>9.1f} {c['server'] / reqs * 1000:>19.2f} "
              f"{c['pg'] / reqs * 1000:>9.2f} {c['client'] / reqs * 1000:>8.2f} {c['busy_cores']:>11.2f} {c['pg_new']:>16}")
    reqs = sum(stats.codes.values())
    per_req = (cpu["server"] + cpu["pg"] + cpu["client"]) / reqs
    cores = os.cpu_count() or 1
    need = n / (0.05 + z)  # actions/s for a 50 ms mean at N clients and think Z (about requests/s)
    print(f"Little's law: with {n} clients and think {z:g} s a 50 ms mean needs X >= N / (0.05 + Z) = {need:.0f} req/s. "
          f"At the {per_req * 1000:.2f} CPU ms a request cost here (server + PostgreSQL + clients), {cores} cores "
          f"do at most {cores / per_req:.0f} req/s; one server process (the GIL) at most "
          f"{args.workers / (cpu['server'] / reqs):.0f} req/s of its {cpu['server'] / reqs * 1000:.2f} ms.")


if __name__ == "__main__":
    main()
