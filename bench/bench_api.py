"""Benchmark: the image grid list and one image with its boxes, on a large project.

Seeds N images (default 100,000) with B boxes each (default 10) into a database with bulk inserts
(COPY on PostgreSQL, Core executemany elsewhere), then measures through the real app (FastAPI
TestClient: routing, auth, validation, serialisation included) the p50 / p95 of:
listing one 50-item page (no filter, deep offset, status, split, a common label, a rare label,
a file-name substring) and fetching one image with its boxes. Target: page p95 < 50 ms.

    python bench/bench_api.py                      # 100k images into a temporary PostgreSQL DB
    python bench/bench_api.py --n 10000 --db-url sqlite:////tmp/bench.db

By default a fresh database is created on the local PostgreSQL server and dropped at the end.
A benchmark, not a test: it prints numbers and asserts nothing about time.
"""
from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import create_engine, insert, text  # noqa: E402

from backend.models import Box, Image, Label, Membership, Project  # noqa: E402
from pgtemp import temp_database  # noqa: E402

LABELS = ["kart", "banana", "nitro", "bomb", "gift"]  # "gift" is rare: one box on 1% of images
STATUSES = ["unlabeled", "in_review", "accepted", "rejected"]
SPLITS = ["train", "train", "train", "val", "test"]


def _image_rows(n: int, project_id: int):
    now = datetime.now(timezone.utc)
    for i in range(1, n + 1):
        yield {"id": i, "project_id": project_id, "sha256": f"{i:064x}", "file_name": f"frame_{i:06d}.jpg",
               "ext": "jpg", "width": 640, "height": 400, "split": SPLITS[i % 5], "status": STATUSES[i % 4],
               "meta": {"track": "lighthouse"}, "created_at": now}


def _box_rows(n: int, per_image: int, label_ids: list[int]):
    now = datetime.now(timezone.utc)
    bid = 0
    for i in range(1, n + 1):
        for j in range(per_image):
            bid += 1
            label = label_ids[4] if (j == 0 and i % 100 == 0) else label_ids[j % 4]
            x = 10.0 + 50 * j
            yield {"id": bid, "image_id": i, "label_id": label, "x1": x, "y1": 20.0, "x2": x + 40, "y2": 80.0,
                   "source": "import", "attributes": {}, "version": 1, "updated_at": now}


def _copy(conn, table: str, cols: list[str], rows) -> None:
    """PostgreSQL COPY through psycopg 3 (the fastest bulk path)."""
    import json

    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row([json.dumps(r[c]) if isinstance(r[c], dict) else r[c] for c in cols])


def _executemany(conn, table, rows, batch: int = 20_000) -> None:
    buf = []
    for r in rows:
        buf.append(r)
        if len(buf) == batch:
            conn.execute(insert(table), buf)
            buf = []
    if buf:
        conn.execute(insert(table), buf)


def seed(url: str, n: int, per_image: int) -> tuple[int, float]:
    engine = create_engine(url)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        pid = conn.execute(insert(Project).values(name="bench", description="", task_kinds=["detection"],
                                                  created_at=datetime.now(timezone.utc))
                           .returning(Project.id)).scalar_one()
        conn.execute(insert(Membership).values(project_id=pid, user_id=1, role="admin"))
        label_ids = [conn.execute(insert(Label).values(project_id=pid, name=nm, color="#e6194b")
                                  .returning(Label.id)).scalar_one() for nm in LABELS]
        images, boxes = _image_rows(n, pid), _box_rows(n, per_image, label_ids)
        if engine.dialect.name == "postgresql":
            _copy(conn, "images", ["id", "project_id", "sha256", "file_name", "ext", "width", "height", "split",
                                   "status", "meta", "created_at"], images)
            _copy(conn, "boxes", ["id", "image_id", "label_id", "x1", "y1", "x2", "y2", "source", "attributes",
                                  "version", "updated_at"], boxes)
            # Explicit ids were written: move the sequences past them.
            conn.execute(text("SELECT setval('images_id_seq', (SELECT max(id) FROM images))"))
            conn.execute(text("SELECT setval('boxes_id_seq', (SELECT max(id) FROM boxes))"))
        else:
            _executemany(conn, Image.__table__, images)
            _executemany(conn, Box.__table__, boxes)
    with engine.connect() as conn:
        # What autovacuum does after a bulk load: statistics, and (PostgreSQL) the visibility map
        # that lets counts run as index-only scans.
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
    engine.dispose()
    return pid, time.perf_counter() - t0


def measure(client, url: str, params: dict | None, repeat: int) -> tuple[float, float, dict]:
    for _ in range(5):  # warm caches and the connection pool
        client.get(url, params=params() if callable(params) else params)
    times = []
    body = None
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(url, params=params() if callable(params) else params)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
        body = r.json()
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="images (default 100000)")
    ap.add_argument("--boxes", type=int, default=10, help="boxes per image (default 10)")
    ap.add_argument("--db-url", default=None, help="database URL (default: a temporary DB on local PostgreSQL)")
    ap.add_argument("--repeat", type=int, default=200, help="requests per measurement")
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    from backend.auth import bootstrap_admin
    from backend.config import Settings
    from backend.db import make_sessionmaker, migrate, session_scope
    from backend.main import create_app

    with temp_database(args.db_url) as url, tempfile.TemporaryDirectory() as tmp:
        migrate(url)
        settings = Settings(data_dir=Path(tmp), database_url=url)
        app = create_app(settings)
        with session_scope(make_sessionmaker(app.state.engine)) as s:
            token = bootstrap_admin(s, settings.data_dir)
        pid, seed_s = seed(url, args.n, args.boxes)
        print(f"seeded {args.n:,} images and {args.n * args.boxes:,} boxes into "
              f"{app.state.engine.dialect.name} in {seed_s:.1f} s", flush=True)
        rnd = random.Random(0)
        page = f"/api/projects/{pid}/images"
        cases = [
            ("page 1, no filter", page, {"limit": 50}),
            ("deep page (random offset)", page, lambda: {"limit": 50, "offset": rnd.randrange(args.n - 50)}),
            ("deep page (keyset after_id)", page,
             lambda: {"limit": 50, "after_id": rnd.randrange(args.n - 50)}),
            ("status=accepted", page, {"limit": 50, "status": "accepted"}),
            ("split=val", page, {"limit": 50, "split": "val"}),
            ("label=kart (on all)", page, {"limit": 50, "label": "kart"}),
            ("label=gift (on 1%)", page, {"limit": 50, "label": "gift"}),
            ("q=_0421 (no letters: LIKE)", page, {"limit": 50, "q": "_0421"}),
            ("q=Frame_0421 (letters: ILIKE)", page, {"limit": 50, "q": "Frame_0421"}),
            ("status+label+q", page, {"limit": 50, "status": "in_review", "label": "banana", "q": "99"}),
            ("page 1, with_total=false", page, {"limit": 50, "with_total": "false"}),
        ]
        out = io.StringIO()
        out.write(f"{'request':34} {'p50 ms':>8} {'p95 ms':>8} {'total':>8} {'items':>6}\n")
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            for name, u, params in cases:
                p50, p95, body = measure(client, u, params, args.repeat)
                out.write(f"{name:34} {p50:8.1f} {p95:8.1f} {str(body['total']):>8} {len(body['items']):6d}\n")
            times = []
            for _ in range(args.repeat):
                iid = rnd.randrange(1, args.n + 1)
                t = time.perf_counter()
                r = client.get(f"/api/images/{iid}")
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and len(r.json()["boxes"]) == args.boxes
            times.sort()
            out.write(f"{'one image with its boxes':34} {statistics.median(times):8.1f} "
                      f"{times[int(0.95 * (len(times) - 1))]:8.1f} {'':>8} {'':>6}\n")
        app.state.engine.dispose()
        print(out.getvalue())


if __name__ == "__main__":
    main()
