"""Benchmark: runs on a large project (issue 14) - launching a train run (its snapshot), the
before / after gallery of a run with 20k held-out images, a split of the project (by group and by
image), and the API process's peak memory, each beside the same measure of the previous code (JSON
snapshot + per-image metrics parsed and sorted in Python on every request), which is kept callable
here (`old_freeze_snapshot`, `old_gallery`).

Seeds 100,000 images x 10 boxes into a temporary PostgreSQL database with COPY (bench_api.seed;
splits train 60% / val 20% / test 20%, so 20k held-out images; no image has a race_id, so a split
by group makes every image a group of its own), then runs each path in its own process, so the
peak memory (ru_maxrss) of one path is not the other's:

    python bench/bench_runs.py                     # 100k images on local PostgreSQL
    python bench/bench_runs.py --n 10000           # smaller
    python bench/bench_runs.py --skip-old          # only the new path

Targets: launch <= 5 s, every gallery case p95 < 50 ms, a split <= 3 s, API peak < 500 MB. The
gallery's `total` of a finished run is computed once per filter and process (backend.api.runs),
so the 5 warm-up requests of each case include that count. The machine may be shared: print
`uptime` beside the numbers. A benchmark, not a test: it prints numbers and asserts nothing about time.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import select, text  # noqa: E402

CASES = [  # gallery requests: every sort and every filter
    ("sort most_improved", {"sort": "most_improved"}),
    ("sort most_regressed", {"sort": "most_regressed"}),
    ("sort image", {"sort": "image"}),
    ("deep page (offset 15000)", {"sort": "most_improved", "offset": 15000}),
    ("error missed", {"error": "missed"}),
    ("error false_box", {"error": "false_box"}),
    ("error wrong_label", {"error": "wrong_label"}),
    ("label kart (every image)", {"label": "kart"}),
    ("label gift (1% of images)", {"label": "gift"}),
    ("split test", {"split": "test"}),
    ("label+error+regressed", {"label": "banana", "error": "missed", "sort": "most_regressed"}),
]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------ the previous code, kept callable
def old_freeze_snapshot(session, project_id: int, splits: list[str], qa_families):
    """backend.runs.freeze_snapshot before issue 14: the whole content as one JSON document."""
    from backend.models import Box, Image, Label, QAPair, Snapshot

    labels = [n for (n,) in session.execute(select(Label.name).where(Label.project_id == project_id).order_by(Label.id))]
    images: dict[int, dict] = {}
    for iid, sha, ext, fn, w, h, sp in session.execute(
            select(Image.id, Image.sha256, Image.ext, Image.file_name, Image.width, Image.height, Image.split)
            .where(Image.project_id == project_id, Image.split.in_(splits)).order_by(Image.id)):
        images[iid] = {"id": iid, "sha256": sha, "ext": ext, "file_name": fn, "width": w, "height": h, "split": sp,
                       "boxes": [], "qa": []}
    n_boxes = n_qa = 0
    for iid, lab, x1, y1, x2, y2 in session.execute(
            select(Box.image_id, Label.name, Box.x1, Box.y1, Box.x2, Box.y2).join(Label, Label.id == Box.label_id)
            .join(Image, Image.id == Box.image_id)
            .where(Image.project_id == project_id, Image.split.in_(splits)).order_by(Box.image_id, Box.id)):
        images[iid]["boxes"].append([lab, x1, y1, x2, y2])
        n_boxes += 1
    q = (select(QAPair.image_id, QAPair.id, QAPair.family, QAPair.template_id, QAPair.question, QAPair.answer,
                QAPair.params).join(Image, Image.id == QAPair.image_id)
         .where(QAPair.project_id == project_id, Image.split.in_(splits)).order_by(QAPair.image_id, QAPair.id))
    for iid, qid, fam, tid, question, answer, params in session.execute(q):
        images[iid]["qa"].append([qid, fam, tid, question, answer, params])
        n_qa += 1
    content = {"labels": labels, "splits": sorted(splits), "images": list(images.values())}
    sha = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    same = session.scalar(select(Snapshot).where(Snapshot.project_id == project_id, Snapshot.sha256 == sha))
    if same is not None:
        return same
    snap = Snapshot(project_id=project_id, sha256=sha, n_images=len(images), n_boxes=n_boxes, n_qa=n_qa,
                    content=content)
    session.add(snap)
    session.flush()
    return snap


ERROR_STAT = {"missed": "fn", "false_box": "fp", "wrong_label": "wrong_label"}


def old_gallery(db, run, sort="most_improved", label=None, error=None, split=None, offset=0, limit=50) -> dict:
    """backend.api.runs.gallery before issue 14 (it had no split filter: applied here in Python)."""
    from backend.models import Prediction, Snapshot
    from worker.codecs import norm_label

    per = (run.metrics or {}).get("per_image") or {}
    before = {r["image_id"]: r for r in per.get("before", [])}
    after = {r["image_id"]: r for r in per.get("after", [])}
    snap = db.get(Snapshot, run.snapshot_id) if run.snapshot_id else None
    ims = {im["id"]: im for im in (snap.content["images"] if snap else [])}
    ids = [i for i in ims if (i in before or i in after) and (split is None or ims[i]["split"] == split)]
    items = []
    for iid in ids:
        b, a = before.get(iid), after.get(iid)
        if error is not None and not (a or b)[ERROR_STAT[error]]:
            continue
        change = a["f1"] - b["f1"] if a and b else None
        items.append((iid, b, a, change))
    if label is not None:
        with_pred = set(db.scalars(select(Prediction.image_id).where(
            Prediction.run_id == run.id, Prediction.label == label).distinct()))
        items = [t for t in items if t[0] in with_pred or any(norm_label(g[0]) == norm_label(label)
                                                              for g in ims[t[0]]["boxes"])]
    if sort == "image":
        items.sort(key=lambda t: t[0])
    else:
        sign = -1 if sort == "most_improved" else 1
        items.sort(key=lambda t: (t[3] is None, sign * (t[3] or 0), t[0]))
    page = items[offset: offset + limit]
    boxes: dict = {}
    if page:
        for p in db.scalars(select(Prediction).where(
                Prediction.run_id == run.id, Prediction.task == "detect", Prediction.label.is_not(None),
                Prediction.image_id.in_([t[0] for t in page])).order_by(Prediction.id)):
            boxes.setdefault((p.image_id, p.phase), []).append(
                {"label": p.label, "box": [p.x1, p.y1, p.x2, p.y2], "score": p.score})
    out = [{"image_id": iid, "file_name": ims[iid]["file_name"], "ground_truth": ims[iid]["boxes"],
            "before": boxes.get((iid, "before"), []), "after": boxes.get((iid, "after"), []),
            "stats_before": b, "stats_after": a, "change": change} for iid, b, a, change in page]
    return {"items": out, "total": len(items)}


# ------------------------------------------------------------------ fixtures
def per_image_stats(ids: list[int], seed: int) -> tuple[list[dict], list[dict]]:
    rnd = random.Random(seed)
    out = []
    for _phase in ("before", "after"):
        rows = []
        for iid in ids:
            tp, fp, fn, wl = rnd.randint(0, 10), rnd.randint(0, 3), rnd.randint(0, 3), int(rnd.random() < 0.1)
            d = 2 * tp + fp + fn
            rows.append({"image_id": iid, "tp": tp, "fp": fp, "fn": fn, "wrong_label": wl,
                         "mean_iou": rnd.random(), "f1": 2 * tp / d if d else 1.0})
        out.append(rows)
    return out[0], out[1]


def add_predictions(session, run_id: int, ids: list[int]) -> None:
    """Two predicted boxes per held-out image and phase (as a train run's evaluation writes)."""
    from backend.db import bulk_insert
    from backend.models import Prediction

    cols = ("run_id", "image_id", "phase", "task", "label", "x1", "y1", "x2", "y2", "score", "raw_text", "qtype",
            "question", "expected", "answer", "correct")
    rows = [(run_id, iid, ph, "detect", lab, 10.0, 20.0, 50.0, 80.0, 0.9, "<loc>", None, None, None, None, None)
            for iid in ids for ph in ("before", "after") for lab in ("kart", "banana")]
    bulk_insert(session, Prediction.__table__, cols, rows)


def held_out_ids(session, pid: int) -> list[int]:
    from backend.models import Image

    return list(session.scalars(select(Image.id).where(Image.project_id == pid, Image.split == "test").order_by(Image.id)))


# ------------------------------------------------------------------ the two paths, each in its own process
def phase_new(url: str, pid: int, tmp: Path, repeat: int) -> dict:
    from fastapi.testclient import TestClient

    from backend.auth import bootstrap_admin
    from backend.config import Settings
    from backend.db import session_scope
    from backend.main import create_app
    from backend.models import Run, RunKind, RunStatus
    from backend.runs import freeze_snapshot, store_results

    res: dict = {}
    settings = Settings(data_dir=tmp / "new", database_url=url)
    app = create_app(settings)
    sm = app.state.sessionmaker
    with session_scope(sm) as s:
        token = bootstrap_admin(s, settings.data_dir)
    model = tmp / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps({"model_type": "paligemma"}))
    cfg = {"family": "paligemma", "base_model": str(model)}  # leak key race_id: the seed has none
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        t = time.perf_counter()
        r = c.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": cfg})
        res["launch"] = time.perf_counter() - t
        assert r.status_code == 201, r.text
        with session_scope(sm) as s:
            t = time.perf_counter()
            snap = freeze_snapshot(s, pid, ["test", "train"], None)
            res["freeze_again"] = time.perf_counter() - t
            res["snapshot"] = (snap.n_images, snap.n_boxes)
            ids = held_out_ids(s, pid)
            res["held_out"] = len(ids)
            run = Run(project_id=pid, kind=RunKind.train, status=RunStatus.succeeded, snapshot_id=snap.id, config=cfg)
            s.add(run)
            s.flush()
            before, after = per_image_stats(ids, 0)
            splits = {i: "test" for i in ids}
            store_results(s, run.id, "before", before, splits)
            store_results(s, run.id, "after", after, splits)
            add_predictions(s, run.id, ids)
            rid = run.id
        with app.state.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        res["gallery"] = {}
        for name, params in CASES:
            times = []
            for i in range(repeat + 5):
                t = time.perf_counter()
                r = c.get(f"/api/runs/{rid}/gallery", params={"limit": 50, **params})
                if i >= 5:
                    times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
            times.sort()
            res["gallery"][name] = (statistics.median(times), times[int(0.95 * (len(times) - 1))], r.json()["total"])
    app.state.engine.dispose()
    res["peak_mb"] = peak_mb()
    return res


def phase_old(url: str, pid: int, tmp: Path, repeat: int) -> dict:
    from backend.db import make_engine, make_sessionmaker, session_scope
    from backend.models import Run, RunKind, RunStatus

    res: dict = {}
    sm = make_sessionmaker(make_engine(url))
    with session_scope(sm) as s:
        t = time.perf_counter()
        snap = old_freeze_snapshot(s, pid, ["test", "train"], None)
        s.commit()
        res["launch"] = time.perf_counter() - t  # the snapshot alone: the rest of a launch is shared
        ids = held_out_ids(s, pid)
        before, after = per_image_stats(ids, 0)
        run = Run(project_id=pid, kind=RunKind.train, status=RunStatus.succeeded, snapshot_id=snap.id, config={},
                  metrics={"per_image": {"before": before, "after": after}})
        s.add(run)
        s.flush()
        add_predictions(s, run.id, ids)
        rid = run.id
    res["gallery"] = {}
    for name, params in CASES:
        times = []
        for _ in range(repeat):
            with sm() as s:  # a request: its own session, the run row read anew
                t = time.perf_counter()
                body = old_gallery(s, s.get(Run, rid), **params)
                times.append((time.perf_counter() - t) * 1000)
        times.sort()
        res["gallery"][name] = (statistics.median(times), times[int(0.95 * (len(times) - 1))], body["total"])
    res["peak_mb"] = peak_mb()
    return res


def phase_split(url: str, pid: int, tmp: Path, repeat: int) -> dict:
    """A split by group (default key race_id) and one by image, each written, timed and rolled back."""
    from backend.db import make_engine, make_sessionmaker
    from backend.splits import make_split

    out = {}
    with make_sessionmaker(make_engine(url))() as s:
        for mode in ("group", "image"):
            t = time.perf_counter()
            make_split(s, pid, mode)
            s.flush()
            out[f"split_{mode}"] = time.perf_counter() - t
            s.rollback()
    return {**out, "peak_mb": peak_mb()}


PHASES = {"new": phase_new, "old": phase_old, "split": phase_split}


def run_phase(name: str, url: str, pid: int, tmp: Path, repeat: int) -> dict:
    p = subprocess.run([sys.executable, __file__, "--phase", name, "--db-url", url, "--pid", str(pid), "--tmp", str(tmp),
                        "--repeat", str(repeat)], capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"phase {name} failed:\n{p.stderr[-4000:]}")
    print(f"phase {name}: {p.stdout.strip().splitlines()[-1]}", flush=True)  # raw, as soon as it is measured
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="images (default 100000)")
    ap.add_argument("--boxes", type=int, default=10, help="boxes per image (default 10)")
    ap.add_argument("--repeat", type=int, default=100, help="gallery requests per case (new path)")
    ap.add_argument("--old-repeat", type=int, default=5, help="gallery requests per case (old path: seconds each)")
    ap.add_argument("--skip-old", action="store_true")
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    ap.add_argument("--db-url", help=argparse.SUPPRESS)
    ap.add_argument("--pid", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](args.db_url, args.pid, Path(args.tmp), args.repeat)))
        return

    from bench_api import seed
    from pgtemp import temp_database

    from backend.auth import bootstrap_admin
    from backend.db import make_engine, make_sessionmaker, migrate, session_scope

    with temp_database() as url, tempfile.TemporaryDirectory() as tmp:
        migrate(url)
        eng = make_engine(url)
        with session_scope(make_sessionmaker(eng)) as s:
            bootstrap_admin(s, Path(tmp))  # user 1: bench_api.seed makes it the project's admin
        eng.dispose()
        pid, seed_s = seed(url, args.n, args.boxes)
        print(f"seeded {args.n:,} images x {args.boxes} boxes into PostgreSQL in {seed_s:.1f} s", flush=True)
        new = run_phase("new", url, pid, Path(tmp), args.repeat)
        old = run_phase("old", url, pid, Path(tmp), args.old_repeat) if not args.skip_old else None
        split = run_phase("split", url, pid, Path(tmp), 1)

    def o(key, fmt="{:.2f}"):
        return fmt.format(old[key]) if old else "-"

    n_img, n_box = new["snapshot"]
    print(f"\nlaunch a train run: snapshot of {n_img:,} images / {n_box:,} boxes (target <= 5 s)")
    print(f"  {'':44} {'new':>10} {'old':>10}")
    print(f"  {'POST /runs (leak check + snapshot + queue), s':44} {new['launch']:10.2f} {'':>10}")
    print(f"  {'snapshot alone, s (old: JSON document)':44} {'':>10} {o('launch'):>10}")
    print(f"  {'snapshot again, same data (reused), s':44} {new['freeze_again']:10.2f} {'':>10}")
    print(f"\ngallery of a run with {new['held_out']:,} held-out images, 50 per page (target p95 < 50 ms)")
    print(f"  {'case':30} {'new p50':>8} {'new p95':>8} {'old p50':>9} {'old p95':>9} {'ratio p95':>9} {'total':>7}")
    for case, _ in CASES:
        n50, n95, tot = new["gallery"][case]
        if old:
            o50, o95, otot = old["gallery"][case]
            assert otot == tot, (case, otot, tot)  # both paths agree on what matches
            print(f"  {case:30} {n50:8.1f} {n95:8.1f} {o50:9.1f} {o95:9.1f} {o95 / n95:8.0f}x {tot:7d}")
        else:
            print(f"  {case:30} {n50:8.1f} {n95:8.1f} {'-':>9} {'-':>9} {'-':>9} {tot:7d}")
    print(f"\npeak memory (max RSS) of the API process: new {new['peak_mb']:.0f} MB, old {o('peak_mb', '{:.0f}')} MB "
          f"(target < 500 MB)")
    print(f"split of {args.n:,} images (target <= 3 s): by group {split['split_group']:.2f} s, "
          f"by image {split['split_image']:.2f} s, peak {split['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
