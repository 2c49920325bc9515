"""Benchmark: split 100k images by group (race_id) and run the leak check, on PostgreSQL.

Seeds N images (default 100,000; 1,000 races of 100 frames, 50 tracks) with COPY, then times
backend.splits.make_split(mode="group") (preview and apply) and check(), against a baseline measured
in the same process: reading every image's id, file name and meta into Python (what the old split
did before assigning anything). Target: the group split <= 3 s. Prints numbers; asserts nothing.

    python bench/bench_splits.py                 # temporary PostgreSQL database, dropped at the end
    python bench/bench_splits.py --n 20000 --db-url sqlite:////tmp/b.db
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert, select, text  # noqa: E402

from bench.bench_api import _copy, _executemany  # noqa: E402
from bench.pgtemp import temp_database  # noqa: E402
from backend.models import Image, Project  # noqa: E402


def rows(n: int, pid: int):
    now = datetime.now(timezone.utc)
    for i in range(1, n + 1):
        race = i // 100
        yield {"id": i, "project_id": pid, "sha256": f"{i:064x}", "file_name": f"r{race:04d}/{i:06d}.jpg", "ext": "jpg",
               "width": 640, "height": 400, "split": None, "status": "accepted",
               "meta": {"track": f"track{race % 50}", "race_id": f"track{race % 50}:seed{race}", "frame": i},
               "created_at": now}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--db-url", default=None)
    args = ap.parse_args()
    from backend import splits
    from backend.db import make_sessionmaker, migrate

    with temp_database(args.db_url) as url:
        migrate(url)
        engine = create_engine(url)
        with engine.begin() as conn:
            pid = conn.execute(insert(Project).values(name="bench", description="", task_kinds=["detection"],
                                                      created_at=datetime.now(timezone.utc)).returning(Project.id)).scalar_one()
            cols = ["id", "project_id", "sha256", "file_name", "ext", "width", "height", "split", "status", "meta",
                    "created_at"]
            if engine.dialect.name == "postgresql":
                _copy(conn, "images", cols, rows(args.n, pid))
            else:
                _executemany(conn, Image.__table__, rows(args.n, pid))
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
        sm = make_sessionmaker(engine)

        def timed(fn) -> tuple[float, object]:
            t = time.perf_counter()
            with sm() as s:
                out = fn(s)
                s.commit()
            return time.perf_counter() - t, out

        base, _ = timed(lambda s: len(s.execute(select(Image.id, Image.file_name, Image.meta)
                                                .where(Image.project_id == pid)).all()))
        from sqlalchemy import update
        write, _ = timed(lambda s: s.execute(update(Image).where(Image.project_id == pid).values(split="x")))
        ratios = {"train": 0.8, "val": 0.1, "test": 0.1}
        prev, p = timed(lambda s: splits.make_split(s, pid, "group", key="race_id", ratios=ratios, dry_run=True))
        apply, a = timed(lambda s: splits.make_split(s, pid, "group", key="race_id", ratios=ratios))
        chk, c = timed(lambda s: splits.check(s, pid, "race_id"))
        print(f"{args.n:,} images on {engine.dialect.name}; baseline (load every image's id, name, meta): {base:.2f} s")
        for name, t in (("one UPDATE of every image's split", write), ("group split preview + leak check", prev), ("group split applied", apply),
                        ("leak check", chk)):
            print(f"  {name:34s} {t:6.2f} s  ({t / base:.2f} x baseline){'  target <= 3 s' if 'applied' in name else ''}")
        print(f"  counts {a['counts']}, leaks in preview {len(p['leaks'])}, check ok {c['ok']}")
        engine.dispose()


if __name__ == "__main__":
    main()
