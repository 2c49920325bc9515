"""Generate a project's QA pairs into the database (one transaction, bulk insert) and read them out.

Regeneration of some families deletes the previous *generated, unreviewed* pairs of those
families and inserts the new set, in the caller's transaction: a failure leaves the old set.
Pairs a person touched are kept: edited ones (source "human") and reviewed ones (a person
approved them). A new pair identical to a kept one (same image, template and params) is not
inserted again.

Randomness: one `random.Random` per (seed, family, image file name), so a pair set depends on
the seed and the images' content only, not on ids, order, or which other families ran.
"""
from __future__ import annotations

import gc
import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import and_, delete, or_, select, text
from sqlalchemy.orm import Session

from backend.db import bulk_insert
from backend.importer import _db_value
from backend.models import Box, Image, Label, QAPair, QASource, utcnow
from backend.qa import FAMILIES, check_families, resolve_options
from backend.qa.base import ImageView, Obj, valid_box
from backend.qa.stale import boxes_signature

UNASSIGNED = "unassigned"  # the split key for images without a split
ANALYZE_AFTER = 5000  # generated pairs after which PostgreSQL re-reads qa_pairs' statistics at once
# reviewed_by_id / reviewed_at are left out: NULL for a new pair, and fewer values per COPY row
_COLS = ("project_id", "image_id", "family", "template_id", "question", "answer", "params", "source", "reviewed",
         "created_at", "updated_at", "boxes_sig")


def load_views(session: Session, project_id: int, image_ids: list[int] | None = None
               ) -> tuple[list[ImageView], dict[int, str | None]]:
    """Every image of the project (or of `image_ids`) as an ImageView (valid boxes only, in box id
    order), and its split."""
    labels = [n for (n,) in session.execute(select(Label.name).where(Label.project_id == project_id)
                                            .order_by(Label.id))]
    views: dict[int, ImageView] = {}
    splits: dict[int, str | None] = {}
    for iid, fn, w, h, sp, meta in session.execute(
            select(Image.id, Image.file_name, Image.width, Image.height, Image.split, Image.meta)
            .where(Image.project_id == project_id, *([Image.id.in_(image_ids)] if image_ids is not None else []))
            .order_by(Image.id)):
        views[iid] = ImageView(fn, w, h, meta if isinstance(meta, dict) else {}, [], labels, iid)
        splits[iid] = sp
    q = (select(Box.image_id, Label.name, Box.x1, Box.y1, Box.x2, Box.y2, Box.attributes)
         .join(Label, Label.id == Box.label_id).join(Image, Image.id == Box.image_id)
         .where(Image.project_id == project_id, *([Image.id.in_(image_ids)] if image_ids is not None else []))
         .order_by(Box.image_id, Box.id))
    for iid, lab, x1, y1, x2, y2, attrs in session.execute(q):
        if valid_box(x1, y1, x2, y2):
            views[iid].objs.append(Obj(lab, x1, y1, x2, y2, attrs if isinstance(attrs, dict) else {}))
    return list(views.values()), splits


def _fingerprint(image_id: int, family: str, template_id: str, params: dict) -> tuple:
    return image_id, family, template_id, json.dumps(params, sort_keys=True)


def _params_json(it, cache: dict[int, tuple[dict, str]]) -> str:
    """json.dumps(it.params()), with the JSON of each box (and `extra` dict) made once per image: the
    encoder was most of the cost of 300k pairs, and the pairs of an image share a few boxes."""
    def enc(obj) -> str:
        hit = cache.get(id(obj))
        if hit is None or hit[0] is not obj:  # the cache holds obj, so its id cannot be reused meanwhile
            hit = cache[id(obj)] = (obj, json.dumps(obj))
        return hit[1]

    head = '{"boxes": [' + ", ".join([enc(b) for b in it.boxes]) + "]"
    return head + (", " + enc(it.extra)[1:] if it.extra else "}")


def generate_items(view: ImageView, families: list[str], opts: dict[str, dict], seed: int,
                   cap: int | None) -> Iterator[tuple[str, object]]:
    """(family, QAItem) for one image; at most `cap` per family (a seeded sample, order kept)."""
    for fam in families:
        rng = random.Random(f"{seed}|{fam}|{view.file_name}")
        items = FAMILIES[fam].generate(view, rng, opts[fam])
        if cap is not None and len(items) > cap:
            keep = sorted(rng.sample(range(len(items)), cap))
            items = [items[i] for i in keep]
        for it in items:
            yield fam, it


def generate(session: Session, project_id: int, families: list[str], *, seed: int = 0,
             per_image_cap: int | None = None, negatives_ratio: float = 0.5,
             options: dict[str, dict] | None = None, timings: dict | None = None) -> dict:
    """Replace the generated pairs of `families` in the project; the caller commits.
    Returns {counts: {family: {split: n}}, total, images}; `timings` gets seconds per phase."""
    from backend.errors import InvalidInput

    families = check_families(families)
    if per_image_cap is not None and per_image_cap < 1:
        raise InvalidInput("per_image_cap: must be at least 1 (or null for no cap)")
    if not negatives_ratio >= 0:
        raise InvalidInput("negatives_ratio: must be a number >= 0")
    options = options or {}
    for k in options:
        if k not in FAMILIES:
            raise InvalidInput(f"options.{k}: unknown family (known: {', '.join(FAMILIES)})")
    opts = {f: resolve_options(f, options.get(f), negatives_ratio) for f in families}

    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        clock.append(time.perf_counter())
        if timings is not None:
            timings[name] = clock[-1] - clock[-2]

    with _no_gc():
        return _generate(session, project_id, families, opts, seed, per_image_cap, lap)


@contextmanager
def _no_gc():
    """Hundreds of thousands of new objects would trigger the cyclic GC over and over, each time
    rescanning the growing heap (up to a third of the time); nothing made here is cyclic garbage."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _generate(session, project_id, families, opts, seed, per_image_cap, lap) -> dict:
    views, splits = load_views(session, project_id)
    lap("load")
    t = QAPair.__table__
    keep = or_(QAPair.source == QASource.human, QAPair.reviewed.is_(True))
    kept = {_fingerprint(i, f, tid, p) for i, f, tid, p in session.execute(
        select(QAPair.image_id, QAPair.family, QAPair.template_id, QAPair.params)
        .where(QAPair.project_id == project_id, QAPair.family.in_(families), keep))}
    kept_images = {k[0] for k in kept}
    session.execute(delete(t).where(and_(t.c.project_id == project_id, t.c.family.in_(families),
                                         t.c.source == QASource.generated.value, t.c.reviewed.is_(False))))
    lap("delete")

    counts: dict[str, dict[str, int]] = {f: {} for f in families}
    rows: list[tuple] = []
    _rows(views, splits, families, opts, seed, per_image_cap, project_id, kept, kept_images, counts, rows,
          _db_value(session, t.c.created_at, utcnow()))
    lap("generate")
    bulk_insert(session, t, _COLS, rows)
    lap("insert")
    if len(rows) >= ANALYZE_AFTER and session.get_bind().dialect.name == "postgresql":
        # Fresh statistics now, not at autovacuum's next pass: planned for 60 rows instead of
        # 15,000, the QA list sorted every pair on each page (10-84 ms instead of 0.4 ms).
        session.execute(text("ANALYZE qa_pairs"))
    return {"counts": counts, "total": len(rows), "images": len(views)}


def _rows(views, splits, families, opts, seed, cap, project_id, kept, kept_images, counts, rows, now) -> None:
    gen, false = QASource.generated.value, False
    for v in views:
        split = splits[v.id] or UNASSIGNED
        sig = boxes_signature((o.label, o.x1, o.y1, o.x2, o.y2) for o in v.objs)
        box_json: dict = {}  # id(box dict) -> (box, its JSON): an object's box is shared by its pairs
        for fam, it in generate_items(v, families, opts, seed, cap):
            if v.id in kept_images and _fingerprint(v.id, fam, it.template_id, it.params()) in kept:
                continue
            rows.append((project_id, v.id, fam, it.template_id, it.question, it.answer,
                         _params_json(it, box_json), gen, false, now, now, sig))
            c = counts[fam]
            c[split] = c.get(split, 0) + 1


def generate_for_images(session: Session, project_id: int, families_of: dict[int, dict[str, int]], *,
                        seed: int = 0) -> int:
    """Generate (default options) pairs for these images only: {image: {family: at most n pairs}},
    skipping any identical to a pair kept for them; the caller deleted what it replaces. Returns
    the rows inserted."""
    ids = sorted(families_of)
    rows: list[tuple] = []
    now = _db_value(session, QAPair.__table__.c.created_at, utcnow())
    for k in range(0, len(ids), 500):
        chunk = ids[k:k + 500]
        views, splits = load_views(session, project_id, chunk)
        kept = {_fingerprint(i, f, tid, p) for i, f, tid, p in session.execute(
            select(QAPair.image_id, QAPair.family, QAPair.template_id, QAPair.params)
            .where(QAPair.image_id.in_(chunk)))}
        kept_images = {k_[0] for k_ in kept}
        for v in views:
            for fam, cap in sorted(families_of[v.id].items()):
                _rows([v], splits, check_families([fam]), {fam: resolve_options(fam, None, 0.5)}, seed, max(1, cap),
                      project_id, kept, kept_images, {fam: {}}, rows, now)
    bulk_insert(session, QAPair.__table__, _COLS, rows)
    return len(rows)


def export_rows(session: Session, project_id: int, family: str | None = None, split: str | None = None,
                chunk: int = 5000) -> Iterator[dict]:
    """One dict per pair for the JSONL export, in id order, read in keyset pages (bounded memory)."""
    last = 0
    while True:
        q = (select(QAPair.id, Image.file_name, Image.sha256, Image.split, QAPair.family, QAPair.template_id,
                    QAPair.question, QAPair.answer, QAPair.params, QAPair.source, QAPair.reviewed)
             .join(Image, Image.id == QAPair.image_id)
             .where(QAPair.project_id == project_id, QAPair.id > last).order_by(QAPair.id).limit(chunk))
        if family:
            q = q.where(QAPair.family == family)
        if split:
            q = q.where(Image.split.is_(None) if split == UNASSIGNED else Image.split == split)
        page = session.execute(q).all()
        if not page:
            return
        for r in page:
            yield {"id": r.id, "file_name": r.file_name, "sha256": r.sha256, "split": r.split, "family": r.family,
                   "template_id": r.template_id, "question": r.question, "answer": r.answer, "params": r.params,
                   "source": QASource(r.source).value, "reviewed": r.reviewed}
        last = page[-1].id
