"""QA generation rate: 10,000 SuperTuxKart-like frames (300x200, 5 karts each, meta as the
SuperTuxKart import writes it) seeded in bulk, then every family generated and stored in one
transaction (`backend.qa.store.generate` + commit), on SQLite (temp file) and PostgreSQL (a fresh
temp database, dropped after). Target: <= 10 s each. A second run measures regeneration (the
previous set deleted in the same transaction).

    python bench/bench_qa.py [--n 10000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import func, select, text  # noqa: E402

from backend.db import make_engine, make_sessionmaker, migrate  # noqa: E402
from backend.db import bulk_insert  # noqa: E402
from backend.importer import _db_value  # noqa: E402
from backend.models import Box, Image, Label, Project, QAPair, utcnow  # noqa: E402
from backend.qa import FAMILIES  # noqa: E402
from backend.qa.store import generate  # noqa: E402
from pgtemp import temp_database  # noqa: E402

W, H, KARTS = 300, 200, 5
NAMES = ["Puffy", "Suzanne", "Xue", "Emule", "Kiki", "Pidgin", "Sara", "Wilber"]
TRACKS = ["lighthouse", "hacienda", "sandtrack", "zengarden", "snowtuxpeak", "cornfield_crossing"]


def seed(session, n: int) -> int:
    rng = random.Random(0)
    project = Project(name="bench")
    session.add(project)
    session.flush()
    label = Label(project_id=project.id, name="kart")
    session.add(label)
    session.flush()
    now = _db_value(session, Image.__table__.c.created_at, utcnow())
    images, boxes = [], []
    start = (session.scalar(select(func.max(Image.id))) or 0) + 1
    for i in range(n):
        iid = start + i
        track = TRACKS[i % len(TRACKS)]
        ddt = [round(rng.uniform(0, 500), 2) for _ in NAMES]
        ego = 0
        in_view = rng.sample(range(len(NAMES)), KARTS)
        ego_detected = rng.random() < 0.17
        if not ego_detected and ego in in_view:
            in_view.remove(ego)
            in_view.append(next(k for k in range(1, len(NAMES)) if k not in in_view))
        meta = {"track": track, "seed": i % 3, "frame": f"{i:05x}", "view": 0, "karts": NAMES, "num_karts": len(NAMES),
                "race_id": f"{track}:seed{i % 3}", "ego_kart_id": ego, "ego_source": "ego_ids",
                "ego_kart_name": NAMES[ego], "ego_detected": ego in in_view, "kart_distances": ddt,
                "leader": NAMES[max(range(len(ddt)), key=ddt.__getitem__)], "distance_down_track": ddt[ego],
                "race_position": 1 + sum(d > ddt[ego] for d in ddt)}
        images.append((iid, project.id, f"{i:064x}", f"{track}/{i:05x}_00_im.jpg", "jpg", W, H, None, json.dumps(meta),
                       "in_review", None, None, now))
        for k in in_view:
            x, y = rng.uniform(0, W - 40), rng.uniform(60, H - 30)
            w, h = rng.uniform(10, 60), rng.uniform(8, 40)
            boxes.append((iid, label.id, x, y, min(W, x + w), min(H, y + h), "import", None,
                          json.dumps({"kart_id": k, "kart_name": NAMES[k], "visible": 1.0}), 1, None, now))
    bulk_insert(session, Image.__table__, ("id", "project_id", "sha256", "file_name", "ext", "width", "height", "split",
                                            "meta", "status", "reviewed_by_id", "reviewed_at", "created_at"), images)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT setval(pg_get_serial_sequence('images', 'id'), :m)"), {"m": start + n})
    bulk_insert(session, Box.__table__, ("image_id", "label_id", "x1", "y1", "x2", "y2", "source", "score",
                                          "attributes", "version", "updated_by_id", "updated_at"), boxes)
    session.commit()
    return project.id


def run(url: str, n: int) -> dict:
    migrate(url)
    engine = make_engine(url)
    try:
        factory = make_sessionmaker(engine)
        with factory() as s:
            pid = seed(s, n)
        times = []
        for _ in range(2):  # first generation, then a regeneration that replaces it
            with factory() as s:
                t0, phases = time.perf_counter(), {}
                res = generate(s, pid, list(FAMILIES), seed=0, timings=phases)
                t1 = time.perf_counter()
                s.commit()
                phases["commit"] = time.perf_counter() - t1
                times.append(time.perf_counter() - t0)
                print(url.split(":")[0], {k: round(v, 2) for k, v in phases.items()}, flush=True)
        with factory() as s:
            stored = s.scalar(select(func.count()).select_from(QAPair).where(QAPair.project_id == pid))
        assert stored == res["total"], (stored, res["total"])
        per_family = {f: sum(c.values()) for f, c in res["counts"].items()}
        return {"first": times[0], "regenerate": times[1], "pairs": res["total"], "per_family": per_family}
    finally:
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    a = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as d:
        results["sqlite"] = run(f"sqlite:///{d}/bench.db", a.n)
    with temp_database(prefix="bench_qa", server=a.pg) as url:
        results["postgresql"] = run(url, a.n)
    print(f"{a.n} frames x {KARTS} karts, all families {list(FAMILIES)}")
    for db, r in results.items():
        print(f"{db:10s}: {r['pairs']} pairs  generate+store {r['first']:.2f} s  regenerate {r['regenerate']:.2f} s  "
              f"({r['pairs'] / r['first']:.0f} pairs/s)  target <= 10 s: {'OK' if r['first'] <= 10 and r['regenerate'] <= 10 else 'MISSED'}")
    print("pairs per family:", results["sqlite"]["per_family"])
    print(f"ratio PostgreSQL / SQLite: {results['postgresql']['first'] / results['sqlite']['first']:.2f}")


if __name__ == "__main__":
    main()
