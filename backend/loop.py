"""The loop: a run's hard images go back to review, a predict run ranks unlabeled images by the
model's uncertainty, and a retrain on the corrected data compares itself with its parent.

- `worst_images`: of a train / evaluate run's held-out images, the N worst by change (f1 after -
  before, most regressed first; an evaluate run has one phase: lowest f1 first) or by an error
  kind (most missed boxes / false boxes / wrong labels first), from the per-image stats the run
  stored.
- `uncertainty`: of a predict run's images, empty or unparseable outputs first (no box decoded:
  rank score 0), then by the least confident box (the per-box token-probability score the
  inference already computes), low first.
- `send_to_review`: the chosen images become the run's review queue (`review_items`, in order,
  replacing that run's earlier queue) and their status `in_review`.
- `retrain`: a new train run from the parent's config on a new snapshot (the corrected data), and
  an evaluate run of the parent's adapter on the same held-out images, so `lineage` can put the
  parent beside the child with the Δ of every metric both have.
No torch here (the worker executes the runs).
"""
from __future__ import annotations

from typing import Literal

from sqlalchemy import case, delete, insert, literal, select, update
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.errors import Conflict, InvalidInput
from backend.models import Image, ImageStatus, Prediction, ReviewItem, Run, RunImageResult, RunKind, RunStatus, utcnow
from backend.runs import create_run, load_snapshot

By = Literal["change", "missed", "false_box", "wrong_label", "uncertainty"]
ERROR_STAT = {"missed": "fn", "false_box": "fp", "wrong_label": "wrong_label"}  # error kind -> per-image stat
MAX_N = 10_000


def _need_succeeded(run: Run) -> None:
    if run.status != RunStatus.succeeded:
        raise Conflict(f"run {run.id} is {run.status.value}; only a succeeded run's results can be used")


def worst_images(session: Session, run: Run, n: int, by: By) -> list[dict]:
    """[{image_id, reason, score}] of the N worst held-out images (see the module doc), ranked and
    cut in SQL over the run's per-image result rows."""
    _need_succeeded(run)
    if run.kind == RunKind.predict:
        raise InvalidInput(f"by: run {run.id} is a predict run (no ground truth); rank it by 'uncertainty'")
    R = RunImageResult
    mine = R.run_id == run.id
    if session.scalar(select(R.image_id).where(mine).limit(1)) is None:
        raise Conflict(f"run {run.id} stored no per-image results")
    has_after = session.scalar(select(R.image_id).where(mine, R.f1_after.is_not(None)).limit(1)) is not None
    phase = "after" if has_after else "before"  # the last phase the run evaluated
    f1 = getattr(R, f"f1_{phase}")
    if by == "change":
        both = R.f1_before.is_not(None) if has_after else literal(False)
        score = case((both, R.f1_after - R.f1_before), else_=f1)
        reason = case((both, literal("regressed")), else_=literal("low_f1"))
        q = select(R.image_id, reason, score).where(mine, f1.is_not(None)).order_by(score, R.image_id)
    else:
        stat = getattr(R, f"{ERROR_STAT[by]}_{phase}")
        q = (select(R.image_id, literal(by), stat).where(mine, f1.is_not(None), stat > 0)
             .order_by(stat.desc(), R.image_id))
    return [{"image_id": iid, "reason": why, "score": float(sc)} for iid, why, sc in session.execute(q.limit(n))]


def uncertainty(session: Session, run: Run) -> list[dict]:
    """A predict run's images, most uncertain first: [{image_id, reason, score, n_boxes}]."""
    _need_succeeded(run)
    if run.kind != RunKind.predict:
        raise InvalidInput(f"run {run.id} is a {run.kind.value} run; uncertainty ranks a predict run's images")
    per: dict[int, dict] = {}
    for iid, label, score, raw in session.execute(
            select(Prediction.image_id, Prediction.label, Prediction.score, Prediction.raw_text)
            .where(Prediction.run_id == run.id, Prediction.phase == "predict", Prediction.task == "detect")):
        d = per.setdefault(iid, {"image_id": iid, "scores": [], "raw": raw or ""})
        if label is not None:
            d["scores"].append(score if score is not None else 0.0)
    out = []
    for d in per.values():
        if d["scores"]:
            out.append({"image_id": d["image_id"], "reason": "uncertain", "score": min(d["scores"]),
                        "n_boxes": len(d["scores"])})
        else:  # nothing decoded: the model said nothing, or nothing it said parsed as a box
            out.append({"image_id": d["image_id"], "reason": "unparseable" if d["raw"].strip() else "empty",
                        "score": 0.0, "n_boxes": 0})
    out.sort(key=lambda d: (d["score"], d["n_boxes"] > 0, d["image_id"]))
    return out


def send_to_review(session: Session, run: Run, n: int, by: By) -> dict:
    """Queue the run's N worst (or most uncertain) images for review; return the queue."""
    if not 1 <= n <= MAX_N:
        raise InvalidInput(f"n: must be 1..{MAX_N}, got {n}")
    picked = uncertainty(session, run)[:n] if by == "uncertainty" else worst_images(session, run, n, by)
    ids = [p["image_id"] for p in picked]
    live = set(session.scalars(select(Image.id).where(Image.project_id == run.project_id, Image.id.in_(ids))))
    picked = [p for p in picked if p["image_id"] in live]  # an image deleted since the run is skipped
    session.execute(delete(ReviewItem).where(ReviewItem.run_id == run.id))
    now = utcnow()
    if picked:
        session.execute(insert(ReviewItem), [
            {"project_id": run.project_id, "run_id": run.id, "image_id": p["image_id"], "rank": i,
             "reason": p["reason"], "score": p["score"], "created_at": now} for i, p in enumerate(picked)])
        session.execute(update(Image).where(Image.id.in_([p["image_id"] for p in picked]))
                        .values(status=ImageStatus.in_review))
    session.commit()
    return review_queue(session, run.project_id, run.id)


def review_queue(session: Session, project_id: int, run_id: int | None = None) -> dict:
    """The review queue (of one run, or of the project's latest queued run), in order, with each
    image's current status."""
    if run_id is None:
        run_id = session.scalar(select(ReviewItem.run_id).where(ReviewItem.project_id == project_id)
                                .order_by(ReviewItem.created_at.desc(), ReviewItem.id.desc()).limit(1))
    items = []
    if run_id is not None:
        for ri, fn, st in session.execute(
                select(ReviewItem, Image.file_name, Image.status).join(Image, Image.id == ReviewItem.image_id)
                .where(ReviewItem.project_id == project_id, ReviewItem.run_id == run_id).order_by(ReviewItem.rank)):
            items.append({"image_id": ri.image_id, "file_name": fn, "status": st.value, "rank": ri.rank,
                          "reason": ri.reason, "score": ri.score})
    return {"run_id": run_id, "items": items, "pending": sum(i["status"] == "in_review" for i in items)}


# ---------------------------------------------------------------- retrain + lineage
def retrain(session: Session, settings: Settings, parent: Run, user_id: int | None) -> dict:
    """The child train run (parent's config, new snapshot) and the parent's evaluation on the
    child's held-out images."""
    if parent.kind != RunKind.train:
        raise InvalidInput(f"run {parent.id} is a {parent.kind.value} run; retrain starts from a train run")
    _need_succeeded(parent)
    if not parent.adapter_path:
        raise Conflict(f"run {parent.id} has no adapter to compare with")
    cfg = dict(parent.config or {})
    child = create_run(session, settings, project_id=parent.project_id, user_id=user_id, kind="train", config=cfg,
                       parent_run_id=parent.id)
    ev_cfg = {k: v for k, v in cfg.items() if k not in ("image_ids", "image_status")}
    ev_cfg["adapter_run_id"] = parent.id
    compare = create_run(session, settings, project_id=parent.project_id, user_id=user_id, kind="evaluate",
                         config=ev_cfg, parent_run_id=parent.id)
    return {"child_run_id": child.id, "compare_run_id": compare.id}


def _eval_images(session: Session, snapshot_id: int | None, split: str) -> list:
    """A snapshot's images of `split` with their boxes, in id order (to tell two runs scored the same data)."""
    if not snapshot_id:
        return []
    return [[im["id"], im["boxes"]] for im in load_snapshot(session, snapshot_id, [split])["images"]]


def _numbers(m: dict) -> dict[str, float]:
    """The run's headline metrics: every top-level number, and VQA accuracy."""
    out = {k: float(v) for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
           and not k.startswith("n_")}
    acc = (m.get("vqa") or {}).get("accuracy")
    if isinstance(acc, (int, float)):
        out["vqa_accuracy"] = float(acc)
    return out


def lineage(session: Session, run: Run) -> dict:
    """Ancestors (oldest first), children, and, for a retrained run, the parent column and the Δ."""
    chain, seen, cur = [], {run.id}, run
    while cur.parent_run_id is not None and cur.parent_run_id not in seen:
        cur = session.get(Run, cur.parent_run_id)
        if cur is None:
            break
        seen.add(cur.id)
        chain.append(cur)

    def brief(r: Run) -> dict:
        return {"id": r.id, "kind": r.kind.value, "status": r.status.value, "created_at": r.created_at.isoformat()
                if r.created_at else None, "snapshot_id": r.snapshot_id}

    kids = session.scalars(select(Run).where(Run.parent_run_id == run.id).order_by(Run.id)).all()
    out = {"run_id": run.id, "parent_run_id": run.parent_run_id, "ancestors": [brief(r) for r in reversed(chain)],
           "children": [brief(r) for r in kids if r.kind == RunKind.train], "comparison": None}
    if run.parent_run_id is None or run.kind != RunKind.train:
        return out
    # retrain() creates the comparison right after the child: the first such evaluate run after it
    compare = next((r for r in session.scalars(select(Run).where(
        Run.parent_run_id == run.parent_run_id, Run.kind == RunKind.evaluate, Run.id > run.id).order_by(Run.id))
        if (r.config or {}).get("adapter_run_id") == run.parent_run_id), None)
    if compare is None:
        return out
    split = (run.config or {}).get("eval_split", "test")
    same = _eval_images(session, run.snapshot_id, split) == _eval_images(session, compare.snapshot_id, split)
    cmp = {"compare_run_id": compare.id, "status": compare.status.value, "same_images": same, "rows": []}
    child_m = (run.metrics or {}).get("after") if run.status == RunStatus.succeeded else None
    parent_m = (compare.metrics or {}).get("after") if compare.status == RunStatus.succeeded else None
    if child_m and parent_m:
        p, c = _numbers(parent_m), _numbers(child_m)
        cmp["rows"] = [{"metric": k, "parent": p[k], "child": c[k], "delta": c[k] - p[k]} for k in p if k in c]
    out["comparison"] = cmp
    return out
