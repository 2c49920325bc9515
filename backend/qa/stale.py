"""Stale QA pairs and placeholder checks.

A pair records, in `boxes_sig`, a signature of its image's (valid) boxes when it was generated. It
is stale when the image's boxes no longer match: a box added, moved, relabelled or deleted. The
signature is order-free (sorted label + rounded coordinates), so re-saving the same boxes is not a
change. Pairs generated before signatures existed (NULL) are never called stale.

Regenerating the stale pairs replaces the *generated* pairs of the stale images, reviewed or not
(their boxes changed, so the approval is of something else); pairs a person edited are kept.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from backend.errors import InvalidInput
from backend.models import Box, Image, Label, QAPair, QASource
from backend.qa.base import _PH, valid_box

_CHUNK = 1000


def boxes_signature(boxes: Iterable[tuple[str, float, float, float, float]]) -> str:
    """sha1 of the sorted (label, coordinates to 0.01 px) of an image's valid boxes."""
    parts = sorted(f"{lab}|{x1:.2f}|{y1:.2f}|{x2:.2f}|{y2:.2f}" for lab, x1, y1, x2, y2 in boxes
                   if valid_box(x1, y1, x2, y2))
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def current_signatures(session: Session, image_ids: Iterable[int]) -> dict[int, str]:
    """The signature of each image's boxes now (images without boxes included)."""
    ids = sorted(set(image_ids))
    boxes: dict[int, list] = defaultdict(list)
    for k in range(0, len(ids), _CHUNK):
        for iid, lab, x1, y1, x2, y2 in session.execute(
                select(Box.image_id, Label.name, Box.x1, Box.y1, Box.x2, Box.y2).join(Label, Label.id == Box.label_id)
                .where(Box.image_id.in_(ids[k:k + _CHUNK]))):
            boxes[iid].append((lab, x1, y1, x2, y2))
    return {i: boxes_signature(boxes.get(i, [])) for i in ids}


def stale_ids(session: Session, rows: Iterable[tuple[int, int, str | None]]) -> set[int]:
    """Of (pair id, image id, boxes_sig) rows, the ids of the stale pairs."""
    rows = list(rows)
    now = current_signatures(session, [r[1] for r in rows if r[2] is not None])
    return {pid for pid, iid, sig in rows if sig is not None and now.get(iid) != sig}


def iter_stale(session: Session, project_id: int, conds: list | None = None) -> Iterator[int]:
    """Ids of the project's stale pairs (matching `conds`), in (image, id) order, read in pages of
    images so memory stays bounded."""
    base = [QAPair.project_id == project_id, QAPair.boxes_sig.is_not(None), *(conds or [])]
    last = -1
    while True:
        images = list(session.scalars(select(QAPair.image_id).join(Image, Image.id == QAPair.image_id)
                                      .where(*base, QAPair.image_id > last).distinct()
                                      .order_by(QAPair.image_id).limit(_CHUNK)))
        if not images:
            return
        sigs = current_signatures(session, images)
        for pid, iid, sig in session.execute(
                select(QAPair.id, QAPair.image_id, QAPair.boxes_sig).join(Image, Image.id == QAPair.image_id)
                .where(*base, QAPair.image_id.in_(images)).order_by(QAPair.image_id, QAPair.id)):
            if sigs[iid] != sig:
                yield pid
        last = images[-1]


def check_placeholders(text: str, n_boxes: int, field: str) -> None:
    """422 naming each `{boxN}` that refers to no box of the pair."""
    bad = sorted({m.group(0) for m in _PH.finditer(text) if int(m.group(1)) >= n_boxes}, key=lambda s: int(s[4:-1]))
    if bad:
        have = f"{{box0}}..{{box{n_boxes - 1}}}" if n_boxes else "none"
        raise InvalidInput(f"{field}: {', '.join(bad)} refers to no box of this pair "
                           f"(it has {n_boxes} box(es): {have})")


def regenerate_stale(session: Session, project_id: int, *, seed: int = 0) -> dict:
    """Replace the generated pairs of the images that have stale pairs, family by family, keeping
    the pairs people edited; the caller commits. Returns {images, deleted, inserted}."""
    from backend.qa import store

    # images with stale *generated* pairs: a stale edited pair alone is left to its editor
    stale = set(iter_stale(session, project_id, [QAPair.source == QASource.generated]))
    if not stale:
        return {"images": 0, "deleted": 0, "inserted": 0}
    ids = sorted(stale)
    images = sorted({iid for k in range(0, len(ids), _CHUNK) for iid in session.scalars(
        select(QAPair.image_id).where(QAPair.id.in_(ids[k:k + _CHUNK])))})
    # per image and family: how many generated pairs it had (the new set is capped to that)
    fam_of: dict[int, dict[str, int]] = defaultdict(dict)
    for k in range(0, len(images), _CHUNK):
        for iid, fam, n in session.execute(
                select(QAPair.image_id, QAPair.family, func.count()).where(
                    QAPair.image_id.in_(images[k:k + _CHUNK]), QAPair.source == QASource.generated,
                    QAPair.boxes_sig.is_not(None)).group_by(QAPair.image_id, QAPair.family)):
            fam_of[iid][fam] = n
    deleted = 0
    for iid, fams in fam_of.items():
        res = session.execute(delete(QAPair).where(and_(QAPair.image_id == iid, QAPair.family.in_(list(fams)),
                                                        QAPair.source == QASource.generated))
                              .execution_options(synchronize_session=False))
        deleted += res.rowcount
    inserted = store.generate_for_images(session, project_id, fam_of, seed=seed)
    return {"images": len(fam_of), "deleted": deleted, "inserted": inserted}
