"""Snapshots as rows and a run's per-image results as rows (issue 14), on SQLite and PostgreSQL:
same data = same hash (and the same snapshot), any change = a new one; the worker reads back
exactly what was frozen; the gallery sorts, filters (label, error, split) and pages in SQL and
agrees with a reference computed here in Python; old JSON snapshots are moved by migration 0008."""
from __future__ import annotations

import random

from sqlalchemy import func, select

from backend.db import bulk_insert, session_scope
from backend.models import (Box, Image, Label, Prediction, Project, QAPair, Run, RunImageResult, RunKind, RunStatus,
                            Snapshot, SnapshotBox, SnapshotImage, SnapshotQA)
from backend.runs import RESULT_STATS, freeze_snapshot, load_snapshot, store_results

LABELS = ["kart", "Banana", "item box"]


def make_project(s, n_images: int = 60, seed: int = 0) -> int:
    rnd = random.Random(seed)
    p = Project(name=f"p{seed}")
    s.add(p)
    s.flush()
    labels = [Label(project_id=p.id, name=n) for n in LABELS]
    s.add_all(labels)
    s.flush()
    for i in range(n_images):
        im = Image(project_id=p.id, sha256=f"{i:064x}", file_name=f"f/{i}.png", ext="png", width=100 + i, height=80,
                   split=("test" if i % 3 == 0 else "train") if i % 10 else "val")
        s.add(im)
        s.flush()
        for _ in range(rnd.randint(0, 4)):
            x, y = rnd.uniform(0, 50), rnd.uniform(0, 40)
            s.add(Box(image_id=im.id, label_id=rnd.choice(labels).id, x1=x, y1=y, x2=x + 10, y2=y + 5))
        for k in range(rnd.randint(0, 2)):
            s.add(QAPair(project_id=p.id, image_id=im.id, family=rnd.choice(["counting", "spatial"]),
                         template_id=f"t{k}", question=f"q{i}-{k}?", answer=str(k),
                         params={"z": 1, "a": [1, 2], "boxes": []}))
    s.flush()
    return p.id


def reference(s, pid: int, splits: list[str]) -> list[dict]:
    """What the snapshot must hold, built from the ORM objects (an independent path)."""
    out = []
    for im in s.scalars(select(Image).where(Image.project_id == pid, Image.split.in_(splits)).order_by(Image.id)):
        qa = s.scalars(select(QAPair).where(QAPair.image_id == im.id).order_by(QAPair.id)).all()
        out.append({"id": im.id, "sha256": im.sha256, "ext": im.ext, "file_name": im.file_name, "width": im.width,
                    "height": im.height, "split": im.split,
                    "boxes": [[b.label.name, b.x1, b.y1, b.x2, b.y2] for b in im.boxes],
                    "qa": [[q.id, q.family, q.template_id, q.question, q.answer, q.params] for q in qa]})
    return out


def test_snapshot_rows_hash_and_stream(app):
    sm = app.state.sessionmaker
    with session_scope(sm) as s:
        pid = make_project(s)
        a = freeze_snapshot(s, pid, ["test", "train"], None)
        b = freeze_snapshot(s, pid, ["train", "test"], None)
        assert a.id == b.id  # same data: same hash, the snapshot is reused
        got = load_snapshot(s, a.id)
        assert got["labels"] == LABELS and got["splits"] == ["test", "train"]
        assert [{**im, "boxes": [list(x) for x in im["boxes"]], "qa": [list(x) for x in im["qa"]]}
                for im in got["images"]] == reference(s, pid, ["test", "train"])
        assert (a.n_images, a.n_boxes, a.n_qa) == (len(got["images"]), sum(len(i["boxes"]) for i in got["images"]),
                                                   sum(len(i["qa"]) for i in got["images"]))
        assert [im["id"] for im in load_snapshot(s, a.id, ["test"])["images"]] == [
            im["id"] for im in got["images"] if im["split"] == "test"]
        only_counting = freeze_snapshot(s, pid, ["test", "train"], ["counting"])
        assert only_counting.id != a.id
        assert {q[1] for im in load_snapshot(s, only_counting.id)["images"] for q in im["qa"]} <= {"counting"}
    with session_scope(sm) as s:  # any edit of what was frozen gives a new snapshot; the old one is unchanged
        box = s.scalars(select(Box).join(Image).where(Image.project_id == pid, Image.split == "test")).first()
        box.x2 += 1
        c = freeze_snapshot(s, pid, ["test", "train"], None)
        assert c.id != a.id and c.sha256 != a.sha256
        assert s.scalar(select(func.count()).select_from(SnapshotBox).where(SnapshotBox.snapshot_id == a.id)) == a.n_boxes
        box.x2 -= 1
        assert freeze_snapshot(s, pid, ["test", "train"], None).id == a.id
        other = make_project(s, seed=1)  # the same rows in another project: its own snapshot
        assert freeze_snapshot(s, other, ["test", "train"], None).project_id == other
    with session_scope(sm) as s:  # a snapshot's rows go with it (trigger, not a foreign key), also by project
        counts = lambda sid: [s.scalar(select(func.count()).select_from(t).where(t.snapshot_id == sid))  # noqa: E731
                              for t in (SnapshotImage, SnapshotBox, SnapshotQA)]
        assert all(counts(a.id)) and all(counts(c.id))
        s.delete(s.get(Snapshot, c.id))
        s.flush()
        assert counts(c.id) == [0, 0, 0] and all(counts(a.id))
        s.delete(s.get(Project, pid))
        s.flush()
        assert counts(a.id) == [0, 0, 0]


def _stats(rnd) -> dict:
    tp, fp, fn, wl = rnd.randint(0, 3), rnd.randint(0, 2), rnd.randint(0, 2), rnd.randint(0, 1)
    d = 2 * tp + fp + fn
    return {"tp": tp, "fp": fp, "fn": fn, "wrong_label": wl, "mean_iou": rnd.random(), "f1": 2 * tp / d if d else 1.0}


def test_gallery_sorts_filters_and_pages_in_sql(app, client):
    sm = app.state.sessionmaker
    rnd = random.Random(3)
    with session_scope(sm) as s:
        pid = make_project(s, 90)
        snap = freeze_snapshot(s, pid, ["test", "val", "train"], None)
        run = Run(project_id=pid, kind=RunKind.train, status=RunStatus.succeeded, snapshot_id=snap.id, config={})
        s.add(run)
        s.flush()
        held = [im for im in load_snapshot(s, snap.id)["images"] if im["split"] in ("test", "val")]
        splits = {im["id"]: im["split"] for im in held}
        before = [{"image_id": im["id"], **_stats(rnd)} for im in held]
        after = [{"image_id": im["id"], **_stats(rnd)} for im in held[:-3]]  # 3 images with no after
        store_results(s, run.id, "before", before, splits)
        store_results(s, run.id, "after", after, splits)
        store_results(s, run.id, "after", after, splits)  # a retried phase rewrites, never duplicates
        preds = [(run.id, iid, "after", "detect", lab, 1.0, 2.0, 3.0, 4.0, 0.5, "t", None, None, None, None, None)
                 for iid, lab in ((held[1]["id"], "item box"), (held[2]["id"], "zebra"))]
        bulk_insert(s, Prediction.__table__, ("run_id", "image_id", "phase", "task", "label", "x1", "y1", "x2", "y2",
                                              "score", "raw_text", "qtype", "question", "expected", "answer", "correct"),
                    preds)
        rid = run.id
        assert s.scalar(select(func.count()).select_from(RunImageResult).where(RunImageResult.run_id == rid)) == len(held)
    b = {r["image_id"]: r for r in before}
    a = {r["image_id"]: r for r in after}
    ims = {im["id"]: im for im in held}

    def ref(sort="most_improved", label=None, error=None, split=None) -> list[int]:
        items = []
        for iid in ims:
            st = a.get(iid) or b[iid]
            if error and not st[{"missed": "fn", "false_box": "fp", "wrong_label": "wrong_label"}[error]]:
                continue
            if split and ims[iid]["split"] != split:
                continue
            if label and not (any(" ".join(g[0].split()).lower() == " ".join(label.split()).lower()
                                  for g in ims[iid]["boxes"]) or any(p[1] == iid and p[4] == label for p in preds)):
                continue
            ch = a[iid]["f1"] - b[iid]["f1"] if iid in a else None
            items.append((iid, ch))
        if sort == "image":
            return sorted(i for i, _ in items)
        sign = -1 if sort == "most_improved" else 1
        return [i for i, _ in sorted(items, key=lambda t: (t[1] is None, sign * (t[1] or 0), t[0]))]

    def get(**params) -> tuple[list[int], int, list]:
        r = client.get(f"/api/runs/{rid}/gallery", params={"limit": 500, **params})
        assert r.status_code == 200, r.text
        j = r.json()
        return [it["image_id"] for it in j["items"]], j["total"], j["items"]

    cases = [{}, {"sort": "most_regressed"}, {"sort": "image"}, {"error": "missed"}, {"error": "false_box"},
             {"error": "wrong_label", "sort": "image"}, {"split": "val"}, {"split": "test", "sort": "most_regressed"},
             {"label": " BANANA "}, {"label": "item box", "error": "missed"}, {"label": "zebra"}, {"label": "nothing"}]
    for c in cases:
        ids, total, _ = get(**c)
        want = ref(**c)
        assert ids == want and total == len(want), c
    # ties in change are broken by image id; None changes last; pages are consecutive slices, also
    # where small pages of a common label are probed per row (3 x (offset + limit) < total)
    for c in [{}, {"sort": "most_regressed"}, {"label": "kart"}, {"label": "kart", "sort": "image", "error": "missed"},
              {"label": "Banana", "sort": "most_regressed"}]:
        full = ref(**c)
        pages = [get(offset=o, limit=4, **c) for o in range(0, len(full) + 4, 4)]
        assert [i for p in pages for i in p[0]] == full and {p[1] for p in pages} == {len(full)}, c
    _, _, items = get(sort="image", limit=5)
    it = items[0]
    im = ims[it["image_id"]]
    assert (it["file_name"], it["width"], it["height"], it["split"]) == (im["file_name"], im["width"], im["height"], im["split"])
    assert it["ground_truth"] == [{"label": g[0], "box": list(g[1:5])} for g in im["boxes"]]
    assert it["stats_before"] == {"image_id": it["image_id"], **{k: b[it["image_id"]][k] for k in RESULT_STATS}}
    no_after = [x for x in get()[2] if x["stats_after"] is None]
    assert len(no_after) == 3 and all(x["change"] is None and x["after"] is None for x in no_after)
    assert client.get(f"/api/runs/{rid}/gallery", params={"error": "bogus"}).status_code == 422


def test_migration_moves_json_snapshots_and_per_image_metrics(db_url):
    """A database at 0007 with a JSON snapshot and a run's metrics.per_image -> rows at 0008."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from backend.db import alembic_config, make_sessionmaker

    command.downgrade(alembic_config(db_url), "0007")
    eng = create_engine(db_url)
    content = {"labels": ["kart"], "splits": ["test"], "images": [
        {"id": 5, "sha256": "a" * 64, "ext": "png", "file_name": "x.png", "width": 10, "height": 8, "split": "test",
         "boxes": [["kart", 1.0, 2.0, 3.0, 4.0], ["kart", 2.0, 2.0, 5.0, 6.0]],
         "qa": [[9, "counting", "t1", "How many?", "2", {"boxes": []}]]}]}
    per = {"before": [{"image_id": 5, "tp": 1, "fp": 0, "fn": 1, "wrong_label": 0, "mean_iou": 0.5, "f1": 0.5}],
           "after": [{"image_id": 5, "tp": 2, "fp": 0, "fn": 0, "wrong_label": 0, "mean_iou": 0.9, "f1": 1.0}]}
    import json

    with eng.begin() as c:
        c.execute(text("INSERT INTO projects (id, name, description, task_kinds, created_at) "
                       "VALUES (1, 'p', '', '[]', CURRENT_TIMESTAMP)"))
        c.execute(text("INSERT INTO snapshots (id, project_id, sha256, n_images, n_boxes, n_qa, content, created_at) "
                       "VALUES (1, 1, :sha, 1, 2, 1, :content, CURRENT_TIMESTAMP)"),
                  {"sha": "f" * 64, "content": json.dumps(content)})
        c.execute(text("INSERT INTO runs (id, project_id, kind, status, config, snapshot_id, created_at, sends, attempts, "
                       "max_attempts, cancel_requested, progress, step, loss_history, log_tail, metrics, version) "
                       "VALUES (1, 1, 'train', 'succeeded', '{}', 1, CURRENT_TIMESTAMP, 0, 1, 3, false, 1, 0, '[]', "
                       "'[]', :m, 1)"), {"m": json.dumps({"before": {"map": 0.1}, "per_image": per})})
    eng.dispose()
    command.upgrade(alembic_config(db_url), "head")
    eng = create_engine(db_url)
    with make_sessionmaker(eng)() as s:
        got = load_snapshot(s, 1)
        assert got == content  # the same document, now read from rows
        assert s.get(Snapshot, 1).content == {"labels": ["kart"], "splits": ["test"]}
        r = s.get(RunImageResult, (1, 5))
        assert (r.split, r.tp_before, r.fn_before, r.f1_after, r.change) == ("test", 1, 1, 1.0, 0.5)
        run = s.get(Run, 1)
        assert run.metrics == {"before": {"map": 0.1}}
        assert s.get(Run, 1).snapshot_id == 1
    eng.dispose()
