"""Runs (train / evaluate / predict): validation before queueing, the frozen dataset snapshot, the
queue hand-off, cancellation, the lease reaper and the JSON view. No torch here: the worker
(worker/runner.py) executes runs; this module only reads and writes rows and sends messages.

The run row is the source of truth and the queue only carries its id, so a lost or duplicated
message is harmless: a worker *claims* a run with an atomic UPDATE (queued -> running) and holds a
lease on it that a heartbeat renews; `reap` re-queues runs whose lease expired (resumed from their
last checkpoint) or fails them after `max_attempts`, and re-sends queued runs nobody claimed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, create_model, field_validator
from sqlalchemy import Integer, bindparam, cast, func, insert, literal, select, update
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.errors import Conflict, InvalidInput, NotFound
from backend.models import (
    FINISHED,
    Box,
    Image,
    Label,
    QAPair,
    Run,
    RunKind,
    RunStatus,
    RunImageResult,
    Snapshot,
    SnapshotBox,
    SnapshotImage,
    SnapshotQA,
)
from backend import review_status
from backend.schemas import Id
from backend.splits import assert_no_leakage

log = logging.getLogger("studio.runs")

# Family name -> accepted config.json model_type (mirrors worker.families, which imports torch;
# tests/runs checks the two agree).
FAMILY_MODEL_TYPES: dict[str, tuple[str, ...]] = {
    "paligemma": ("paligemma",),
    "qwen2_vl": ("qwen2_vl",),
    "qwen2_5_vl": ("qwen2_5_vl",),
    "smolvlm": ("idefics3", "smolvlm"),
}
# Families whose boxes are location tokens (worker.families: Family.location_tokens), the only ones
# TrainConfig.loc_sigma applies to; the same test checks this mirror.
LOCATION_TOKEN_FAMILIES = ("paligemma",)
TASK_NAME = "studio.execute_run"
MERGE_TASK_NAME = "studio.merge_adapter"
LOG_TAIL = 200


def now() -> datetime:
    return datetime.now(timezone.utc)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC): make them comparable with aware ones."""
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def run_dir(settings: Settings, run_id: int) -> Path:
    """Every run writes only under its own folder, so two runs can never share an output."""
    return (settings.data_dir / "runs" / str(run_id)).resolve()


# ---------------------------------------------------------------- config
# Keys of worker.train_config.TrainConfig the studio sets itself (output_dir), renames
# (tasks -> task_weights) or lets the worker resolve (device: None = the worker's setting).
STUDIO_OWNED = {"output_dir", "task_weights", "device"}


def _train_knobs() -> dict[str, Any]:
    """RunConfig's training fields, derived from TrainConfig (torch-free): each knob is defined once."""
    import dataclasses
    import typing

    from worker import train_config

    hints = typing.get_type_hints(train_config.TrainConfig, vars(train_config))
    out: dict[str, Any] = {}
    for f in dataclasses.fields(train_config.TrainConfig):
        if f.name in STUDIO_OWNED:
            continue
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            out[f.name] = (hints[f.name] | None, None)  # family / base_model: checked per run kind
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = (hints[f.name], Field(default_factory=f.default_factory))
        else:
            out[f.name] = (hints[f.name], f.default)
    out["device"] = (str | None, None)  # None: the worker's setting (auto = cuda when visible, else cpu)
    return out


_TrainKnobs = create_model("TrainKnobs", __config__=ConfigDict(extra="forbid"), **_train_knobs())


class RunConfig(_TrainKnobs):
    """The config of a run: worker.train_config.TrainConfig's keys (except output_dir, which the
    studio picks; derived from it, not repeated) plus the run-level keys. Unknown keys are an
    error (a misspelled knob must not silently train with the default)."""

    model_config = ConfigDict(extra="forbid")

    # run level
    devices: int = Field(1, ge=1, le=64)  # > 1: DDP over this many processes on one worker (worker/distributed.py)
    # sampling weights per epoch: detection, questions, and (optional) one question family's own
    # weight, e.g. {"detect": 3, "vqa": 1, "vqa:spatial": 4}, overriding vqa for that family
    tasks: dict[str, float] = Field(default_factory=lambda: {"detect": 1.0, "vqa": 1.0})
    qa_families: list[str] | None = None  # None: every family the project has pairs of
    train_split: str = "train"
    eval_split: str = "test"
    leak_key: str = "race_id"
    # auto: worker.decoding.auto_max_new_tokens (the family's tokens per object x the most objects
    # of any held-out image + 2, plus overhead), so every held-out answer fits
    max_new_tokens: int | Literal["auto"] = Field("auto", description="int 1..4096 or 'auto'")
    eval_batch_size: int = Field(8, ge=1, le=1024)
    max_eval_images: int | None = Field(None, ge=1)
    eval_qa_per_image: int = Field(4, ge=0)
    # An adapter's boxes (after phase, evaluate / predict with an adapter) pooled with its base's on
    # the same images, weighted box fusion at IoU 0.5 (worker/pooling.py): keeps objects a short
    # fine-tune forgot, at the base's precision (a train run reuses its before phase's boxes; evaluate /
    # predict decode once more with the adapter off). The run's metrics keep the
    # adapter's own numbers beside the pooled ones (after.adapter_alone).
    pool_base_boxes: bool = False
    # evaluate / predict
    adapter_run_id: Id | None = None  # ids within the column range: an oversized one is a 422, not a driver error
    image_ids: list[Id] | None = None
    # review statuses the images must have (backend.review_status): train/evaluate default to
    # not_rejected; predict needs it or image_ids
    image_status: Literal[review_status.NAMES] | None = None  # type: ignore[valid-type]

    @field_validator("max_new_tokens")
    @classmethod
    def _max_new_tokens(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 4096:
            raise ValueError("must be 'auto' or an integer from 1 to 4096")
        return v

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, v: dict[str, float]) -> dict[str, float]:
        from backend.qa import FAMILIES

        known = {"detect", "vqa"} | {f"vqa:{f}" for f in FAMILIES}
        unknown = sorted(set(v) - known)
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; use detect, vqa and/or vqa:<question family> "
                             f"({', '.join(FAMILIES)})")
        if any(not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0) for w in v.values()):
            raise ValueError("task weights must be finite numbers >= 0")
        if not any(w > 0 for w in v.values()):
            raise ValueError("at least one task needs a weight > 0")
        return v

    def train_dict(self, output_dir: str) -> dict[str, Any]:
        """The TrainConfig of this run (worker.train_config.TrainConfig.from_dict takes it)."""
        from worker.train_config import TrainConfig  # torch-free module

        names = {f for f in TrainConfig.__dataclass_fields__} - STUDIO_OWNED
        d = {k: getattr(self, k) for k in names}
        d.update(output_dir=output_dir, task_weights={k: float(w) for k, w in self.tasks.items()},
                 device=self.device or "cpu")
        return d


def parse_config(kind: str, config: dict) -> RunConfig:
    """Validate; InvalidInput (422) names the field."""
    if not isinstance(config, dict):
        raise InvalidInput("config: must be a JSON object")
    try:
        cfg = RunConfig.model_validate(config)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        msg = "unknown option" if first["type"] == "extra_forbidden" else first["msg"]
        raise InvalidInput(f"config.{where}: {msg}") from None
    if kind == "train" or cfg.adapter_run_id is None:  # else they come from the adapter's run
        for name in ("family", "base_model"):
            if not getattr(cfg, name):
                raise InvalidInput(f"config.{name}: required for a {kind} run")
    if kind == "train":
        from worker.train_config import BadConfig, TrainConfig

        if cfg.loc_sigma and cfg.family in FAMILY_MODEL_TYPES and cfg.family not in LOCATION_TOKEN_FAMILIES:
            raise InvalidInput(f"config.loc_sigma: family {cfg.family} writes box coordinates as text, not location "
                               f"tokens; soft location targets need them ({', '.join(LOCATION_TOKEN_FAMILIES)}): use 0")

        try:
            TrainConfig.from_dict(cfg.train_dict("<run dir>"))
        except BadConfig as e:
            raise InvalidInput(f"config.{e}") from None
    return cfg


def check_model(family: str, base_model: str) -> None:
    """The family is known and matches the model folder's config.json (no torch: JSON only); a
    string that is not an existing folder must look like a hub id `org/name`."""
    if family not in FAMILY_MODEL_TYPES:
        raise InvalidInput(f"config.family: unknown model family {family!r}; known: {', '.join(sorted(FAMILY_MODEL_TYPES))}")
    p = Path(base_model).expanduser()
    if p.is_dir():
        cfg = p / "config.json"
        if not cfg.is_file():
            raise InvalidInput(f"config.base_model: model folder {base_model} has no config.json")
        try:
            model_type = json.loads(cfg.read_text()).get("model_type")
        except (OSError, ValueError) as e:
            raise InvalidInput(f"config.base_model: {cfg} is not readable JSON: {e}") from None
        if model_type not in FAMILY_MODEL_TYPES[family]:
            raise InvalidInput(f"config.family: model {base_model} has model_type {model_type!r}, which is not "
                               f"family {family!r} (accepts {', '.join(FAMILY_MODEL_TYPES[family])})")
        return
    if p.is_absolute() or base_model.startswith((".", "~")) or base_model.count("/") != 1 or p.exists():
        raise InvalidInput(f"config.base_model: model folder {base_model} does not exist (and it is not a hub id 'org/name')")


# ---------------------------------------------------------------- memory estimate
def estimate_run(session: Session, project_id: int, kind: str, config: dict) -> dict:
    """Validate like create_run, then worker.estimate's peak-memory estimate from the base's
    config.json (meta device: no weights), for the project's largest image of the train split.
    The GPU is the worker's: device_gb / fits are known only where this process sees a CUDA device."""
    if kind not in {k.value for k in RunKind}:
        raise InvalidInput(f"kind: {kind!r} is not one of train, evaluate, predict")
    cfg = parse_config(kind, config)
    if cfg.adapter_run_id is not None:
        src = _adapter_run(session, project_id, cfg.adapter_run_id)
        cfg.family = cfg.family or src.config.get("family")
        cfg.base_model = cfg.base_model or src.config.get("base_model")
    check_model(cfg.family, cfg.base_model)
    from worker.train_config import TrainConfig

    tc = TrainConfig.from_dict(cfg.train_dict("<run dir>"))
    big = session.execute(select(Image.width, Image.height).where(Image.project_id == project_id,
                                                                  Image.split == cfg.train_split)
                          .order_by((Image.width * Image.height).desc()).limit(1)).first()
    device = "cpu" if cfg.device == "cpu" else "cuda"
    try:
        from worker.estimate import device_gb, estimate_config

        est = estimate_config(tc, image_size=tuple(big) if big else (1024, 768), device=device,
                              eval_batch_size=cfg.eval_batch_size,
                              max_new_tokens=256 if cfg.max_new_tokens == "auto" else cfg.max_new_tokens,
                              device_gb=device_gb(device))
    except (OSError, ValueError) as e:  # a hub id whose config.json cannot be fetched here
        raise InvalidInput(f"config.base_model: cannot read the config.json of {cfg.base_model}: {e}") from None
    except Exception as e:  # noqa: BLE001 - a config the estimate does not understand: say so, never a 500
        raise InvalidInput(f"config.base_model: cannot estimate the memory of {cfg.base_model}: "
                           f"{type(e).__name__}: {e}") from None
    return est


# ---------------------------------------------------------------- snapshot
def _split_has_images(session: Session, project_id: int, split: str, image_status: str | None = None) -> bool:
    return session.scalar(select(Image.id).where(Image.project_id == project_id, Image.split == split,
                                                 review_status.condition(image_status)).limit(1)) is not None


def _snapshot_selects(project_id: int, splits: list[str], qa_families: list[str] | None, status_ok):
    """The three SELECTs of what a snapshot copies (images of `splits` whose review status passes
    `status_ok`, their boxes and QA pairs), each in id order."""
    in_splits = (Image.project_id == project_id, Image.split.in_(splits), status_ok)
    images = (select(Image.id, Image.sha256, Image.ext, Image.file_name, Image.width, Image.height, Image.split)
              .where(*in_splits).order_by(Image.id))
    boxes = (select(Box.id, Box.image_id, Label.name, Box.x1, Box.y1, Box.x2, Box.y2)
             .join(Label, Label.id == Box.label_id).join(Image, Image.id == Box.image_id)
             .where(*in_splits).order_by(Box.id))
    qa = (select(QAPair.id, QAPair.image_id, QAPair.family, QAPair.template_id, QAPair.question, QAPair.answer,
                 QAPair.params).join(Image, Image.id == QAPair.image_id)
          .where(QAPair.project_id == project_id, *in_splits).order_by(QAPair.id))
    if qa_families is not None:
        qa = qa.where(QAPair.family.in_(qa_families))
    return images, boxes, qa


STREAM = {"yield_per": 20_000}  # server-side cursor on PostgreSQL: rows arrive in chunks, never all at once


def _pg_digest(session: Session, q, *, skip_first: bool) -> tuple[str, int]:
    """A fingerprint of the rows of `q` and their count, computed by PostgreSQL: two sums of 64-bit
    per-row hashes (hash_record_extended, two seeds). Order-free, so no sort of the 600k boxes (an
    ordered string_agg + sha256 took 3x as long) and only three numbers cross the wire; a changed,
    added or removed row changes the sums, the same rows give the same ones."""
    from sqlalchemy import JSON, tuple_
    from sqlalchemy.dialects.postgresql import JSONB

    sub = q.order_by(None).subquery()
    cols = [cast(c, JSONB) if isinstance(c.type, JSON) else c  # json has no hash function; jsonb has one
            for c in list(sub.c)[1 if skip_first else 0:]]
    row = tuple_(*cols)
    n, h1, h2 = session.execute(select(func.count(), func.sum(func.hash_record_extended(row, 0)),
                                       func.sum(func.hash_record_extended(row, 1))).select_from(sub)).one()
    return f"{n}:{h1 or 0}:{h2 or 0}", n


def freeze_snapshot(session: Session, project_id: int, splits: list[str], qa_families: list[str] | None,
                    image_status: str | None = None) -> Snapshot:
    """Copy the images of `splits` whose review status passes `image_status` (default: not rejected)
    with their boxes and QA pairs into snapshot rows (reused when the same content was frozen before).
    The content hash is computed by PostgreSQL (`_pg_digest`), elsewhere over a stream of the rows
    (the API never holds the project in memory); the copy is three INSERT ... SELECT in the database,
    into tables with no per-row foreign-key check (migration 0010). On PostgreSQL the order of boxes
    within an image is not content (their ids never were); a hash from before 0010 is not reused."""
    image_status = image_status or review_status.DEFAULT
    status_ok = review_status.condition(image_status)
    labels = [n for (n,) in session.execute(select(Label.name).where(Label.project_id == project_id).order_by(Label.id))]
    h = hashlib.sha256(json.dumps({"labels": labels, "splits": sorted(splits), "image_status": image_status},
                                    sort_keys=True).encode())
    counts = []
    pg = session.get_bind().dialect.name == "postgresql"
    selects = _snapshot_selects(project_id, splits, qa_families, status_ok)  # hashed, then copied
    for i, q in enumerate(selects):
        h.update(("images", "boxes", "qa")[i].encode())
        if pg:  # the database digests its own rows: nothing crosses the wire but three numbers
            digest, n = _pg_digest(session, q, skip_first=i == 1)
            h.update(digest.encode())
            counts.append(n)
            continue
        n = 0
        for part in session.execute(q, execution_options=STREAM).partitions():
            for row in part:
                if i == 2:  # params is JSON: key order depends on the database
                    row = (*row[:-1], json.dumps(row[-1], sort_keys=True))
                elif i == 1:
                    row = row[1:]  # box ids are not content
                h.update(repr(tuple(row)).encode())
            n += len(part)
        counts.append(n)
    sha = h.hexdigest()
    same = session.scalar(select(Snapshot).where(Snapshot.project_id == project_id, Snapshot.sha256 == sha))
    if same is not None:
        return same
    snap = Snapshot(project_id=project_id, sha256=sha, n_images=counts[0], n_boxes=counts[1], n_qa=counts[2],
                    content={"labels": labels, "splits": sorted(splits), "image_status": image_status})
    session.add(snap)
    session.flush()
    sid = literal(snap.id, Integer)
    for table, q in zip((SnapshotImage, SnapshotBox, SnapshotQA), selects):
        cols = [c.name for c in table.__table__.columns]
        session.execute(insert(table.__table__).from_select(
            cols, q.with_only_columns(sid, *q.selected_columns).order_by(None)))
    return snap


def load_snapshot(session: Session, snapshot_id: int, splits: list[str] | None = None) -> dict:
    """A snapshot as {labels, splits, images: [{id, sha256, ext, file_name, width, height, split,
    boxes: [[label, x1, y1, x2, y2]], qa: [[id, family, template_id, question, answer, params]]}]},
    read in streams (three ordered cursors merged by image id), optionally only some splits."""
    snap = session.get(Snapshot, snapshot_id)
    SI, SB, SQ = SnapshotImage, SnapshotBox, SnapshotQA
    ims = select(SI.image_id, SI.sha256, SI.ext, SI.file_name, SI.width, SI.height, SI.split).where(
        SI.snapshot_id == snapshot_id)
    if splits is not None:
        ims = ims.where(SI.split.in_(splits))
    images: dict[int, dict] = {}
    for part in session.execute(ims.order_by(SI.image_id), execution_options=STREAM).partitions():
        for iid, sha, ext, fn, w, h, sp in part:
            images[iid] = {"id": iid, "sha256": sha, "ext": ext, "file_name": fn, "width": w, "height": h,
                           "split": sp, "boxes": [], "qa": []}
    for part in session.execute(select(SB.image_id, SB.label, SB.x1, SB.y1, SB.x2, SB.y2)
                                .where(SB.snapshot_id == snapshot_id).order_by(SB.image_id, SB.box_id),
                                execution_options=STREAM).partitions():  # the primary key order
        for iid, *box in part:
            if iid in images:
                images[iid]["boxes"].append(box)
    for part in session.execute(select(SQ.image_id, SQ.qa_id, SQ.family, SQ.template_id, SQ.question, SQ.answer,
                                       SQ.params).where(SQ.snapshot_id == snapshot_id).order_by(SQ.qa_id),
                                execution_options=STREAM).partitions():
        for iid, *qa in part:
            if iid in images:
                images[iid]["qa"].append(qa)
    content = snap.content or {}
    return {"labels": list(content.get("labels", [])), "splits": list(content.get("splits", [])),
            "images": list(images.values())}


RESULT_STATS = ("tp", "fp", "fn", "wrong_label", "f1", "mean_iou")


def store_results(session: Session, run_id: int, phase: str, per_image: list[dict], splits: dict[int, str | None]) -> None:
    """One phase's per-image detection stats into run_image_results (rows of the other phase are
    kept; `change` = f1 after - f1 before where both exist)."""
    R = RunImageResult.__table__
    have = set(session.scalars(select(R.c.image_id).where(R.c.run_id == run_id)))
    other = "before" if phase == "after" else "after"
    vals = lambda r: {f"{k}_{phase}": r.get(k) for k in RESULT_STATS}  # noqa: E731
    new = [r for r in per_image if r["image_id"] not in have]
    if new:
        session.execute(insert(R), [{"run_id": run_id, "image_id": r["image_id"], "split": splits.get(r["image_id"]),
                                     "change": None, **{f"{k}_{other}": None for k in RESULT_STATS}, **vals(r)}
                                    for r in new])
    old = [r for r in per_image if r["image_id"] in have]
    if old:
        f1 = bindparam("f1_new")
        change = (f1 - R.c.f1_before) if phase == "after" else (R.c.f1_after - f1)
        session.execute(update(R).where(R.c.run_id == run_id, R.c.image_id == bindparam("iid"))
                        .values(**{f"{k}_{phase}": bindparam(f"v_{k}") for k in RESULT_STATS}, change=change),
                        [{"iid": r["image_id"], "f1_new": r.get("f1"), **{f"v_{k}": r.get(k) for k in RESULT_STATS}}
                         for r in old])


# ---------------------------------------------------------------- create / cancel
def _adapter_run(session: Session, project_id: int, run_id: int) -> Run:
    src = session.get(Run, run_id)
    if src is None or src.project_id != project_id:
        raise InvalidInput(f"config.adapter_run_id: run {run_id} is not a run of this project")
    if src.kind != RunKind.train or src.status != RunStatus.succeeded or not src.adapter_path:
        raise InvalidInput(f"config.adapter_run_id: run {run_id} is not a succeeded train run with an adapter "
                           f"(it is a {src.kind.value} run, {src.status.value})")
    return src


def create_run(session: Session, settings: Settings, *, project_id: int, user_id: int | None, kind: str,
               config: dict, parent_run_id: int | None = None) -> Run:
    """Validate the config against the project, freeze the snapshot, commit the queued run, enqueue it."""
    if kind not in {k.value for k in RunKind}:
        raise InvalidInput(f"kind: {kind!r} is not one of train, evaluate, predict")
    cfg = parse_config(kind, config)
    if cfg.adapter_run_id is not None:
        if kind == "train":
            raise InvalidInput("config.adapter_run_id: a train run starts from a base model (use resume instead)")
        src = _adapter_run(session, project_id, cfg.adapter_run_id)
        # the adapter's own family and base unless the caller names another copy of the base
        cfg.family = cfg.family or src.config.get("family")
        cfg.base_model = cfg.base_model or src.config.get("base_model")
        if cfg.family != src.config.get("family"):
            raise InvalidInput(f"config.family: the adapter of run {src.id} is for {src.config.get('family')!r}")
    check_model(cfg.family, cfg.base_model)
    from backend.catalog import require_reachable  # a hub id the hub cannot serve: refused now, one sentence

    require_reachable(settings, cfg.base_model)
    snapshot_id = None
    if kind in ("train", "evaluate"):
        cfg.image_status = cfg.image_status or review_status.DEFAULT  # recorded in the run's config
        if not _split_has_images(session, project_id, cfg.eval_split, cfg.image_status):
            raise InvalidInput(f"config.eval_split: the project has no {cfg.image_status} images in the held-out "
                               f"split {cfg.eval_split!r}")
        if kind == "train":
            if cfg.train_split == cfg.eval_split:
                raise InvalidInput("config.eval_split: must differ from train_split (evaluate on held-out images)")
            if not _split_has_images(session, project_id, cfg.train_split, cfg.image_status):
                raise InvalidInput(f"config.train_split: the project has no {cfg.image_status} images in split "
                                   f"{cfg.train_split!r} (config.image_status selects which)")
        if kind == "train" or cfg.adapter_run_id is not None:
            assert_no_leakage(session, project_id, cfg.leak_key)  # 409 naming the groups
        splits = [cfg.eval_split] + ([cfg.train_split] if kind == "train" else [])
        snapshot_id = freeze_snapshot(session, project_id, splits, cfg.qa_families, cfg.image_status).id
    else:  # predict: resolve the images now, so the run is reproducible
        q = select(Image.id).where(Image.project_id == project_id).order_by(Image.id)
        if cfg.image_ids is not None:
            q = q.where(Image.id.in_(cfg.image_ids[:100_000]))
        elif cfg.image_status is not None:
            q = q.where(review_status.condition(cfg.image_status, "config.image_status"))
        else:
            raise InvalidInput("config.image_ids: a predict run needs image_ids or image_status")
        ids = list(session.scalars(q))
        if cfg.image_ids is not None and len(ids) != len(set(cfg.image_ids)):
            raise InvalidInput("config.image_ids: some ids are not images of this project")
        if not ids:
            raise InvalidInput("config.image_status: no image of the project matches")
        cfg.image_ids = ids
    run = Run(project_id=project_id, kind=RunKind(kind), status=RunStatus.queued, snapshot_id=snapshot_id,
              config=cfg.model_dump(mode="json", exclude_unset=False), created_by_id=user_id,
              max_attempts=settings.run_max_attempts, log_tail=[log_line(f"{kind} run queued")],
              parent_run_id=parent_run_id)
    session.add(run)
    session.commit()
    enqueue(session, settings, run)
    return run


def log_line(msg: str) -> str:
    """One line of a run's log tail: a UTC timestamp, then the message."""
    return f"{now():%Y-%m-%d %H:%M:%S} {msg}"


def enqueue(session: Session, settings: Settings, run: Run) -> bool:
    """Send the run's id to the gpu queue; record when. A broker that is down leaves the run queued:
    the reaper re-sends it later, so a failure here is logged, never lost."""
    from worker.celery_app import producer  # celery only, no torch

    try:
        producer(settings).send_task(TASK_NAME, args=[run.id], queue=settings.queue_prefix + "gpu")
    except Exception as e:  # noqa: BLE001 - any broker failure: the reaper retries
        log.warning("could not enqueue run %s (the reaper will retry): %s", run.id, e)
        return False
    session.execute(update(Run).where(Run.id == run.id).values(enqueued_at=now(), sends=Run.sends + 1))
    session.commit()
    return True


def cancel_run(session: Session, run: Run) -> Run:
    """A queued run is cancelled at once; a running one stops at its next step (the worker sees the
    flag). 409 when the run already ended."""
    if run.status in FINISHED:
        raise Conflict(f"run {run.id} already ended ({run.status.value}); nothing to cancel")
    res = session.execute(update(Run).where(Run.id == run.id, Run.status == RunStatus.queued).values(
        status=RunStatus.cancelled, ended_at=now(), cancel_requested=True, version=Run.version + 1,
        log_tail=list(run.log_tail or []) + [log_line("cancelled before it started")]))
    if res.rowcount == 0:
        res = session.execute(update(Run).where(Run.id == run.id, Run.status == RunStatus.running).values(
            cancel_requested=True, version=Run.version + 1))
        if res.rowcount == 0:
            session.refresh(run)
            raise Conflict(f"run {run.id} already ended ({run.status.value}); nothing to cancel")
    session.commit()
    session.refresh(run)
    return run


# ---------------------------------------------------------------- reaper
def _requeue_or_fail(session: Session, settings: Settings, run: Run, t: datetime) -> str | None:
    """One running run whose lease expired at `t`: re-queue it (attempts left) or fail it."""
    since = aware(run.heartbeat_at) or aware(run.started_at)
    when = f"{since:%Y-%m-%d %H:%M:%S} UTC" if since else "its start"
    cond = (Run.id == run.id, Run.status == RunStatus.running, Run.lease_expires_at < t)
    tail = list(run.log_tail or [])[-LOG_TAIL + 1:]
    if run.attempts < run.max_attempts:
        res = session.execute(update(Run).where(*cond).execution_options(synchronize_session=False).values(
            status=RunStatus.queued, worker_id=None, lease_expires_at=None, version=Run.version + 1,
            log_tail=tail + [log_line(f"worker {run.worker_id} lost (no heartbeat since {when}); re-queued to "
                                   f"resume from the last checkpoint (attempt {run.attempts + 1} of {run.max_attempts})")]))
        session.commit()
        if res.rowcount:
            enqueue(session, settings, run)
            return "requeued"
        return None
    reason = f"worker lost (no heartbeat since {when}) after {run.attempts} attempt(s)"
    res = session.execute(update(Run).where(*cond).execution_options(synchronize_session=False).values(
        status=RunStatus.failed, error=reason, ended_at=t, worker_id=None, version=Run.version + 1,
        log_tail=tail + [log_line(reason)]))
    session.commit()
    return "failed" if res.rowcount else None


def reap_run(session: Session, settings: Settings, run: Run) -> None:
    """The cheap per-run check GET /api/runs/{id} does."""
    t = now()
    if run.status == RunStatus.running and run.lease_expires_at is not None and aware(run.lease_expires_at) < t:
        if _requeue_or_fail(session, settings, run, t):
            session.refresh(run)


def reap(session: Session, settings: Settings) -> dict[str, int]:
    """Every run with an expired lease is re-queued or failed; every queued run not claimed for a
    while is re-sent (with back-off: a run waiting behind a long one gets few duplicate messages,
    and a duplicate is harmless since the claim is atomic)."""
    t = now()
    out = {"requeued": 0, "failed": 0, "resent": 0}
    for run in session.scalars(select(Run).where(Run.status == RunStatus.running, Run.lease_expires_at < t)).all():
        r = _requeue_or_fail(session, settings, run, t)
        if r:
            out[r] += 1
    for run in session.scalars(select(Run).where(Run.status == RunStatus.queued)).all():
        last = aware(run.enqueued_at)
        wait = settings.queued_resend_seconds * (2 ** min(max(run.sends - 1, 0), 6))
        if last is None or (t - last).total_seconds() > wait:
            # claim the re-send first, so two reapers do not both send
            res = session.execute(update(Run).where(Run.id == run.id, Run.status == RunStatus.queued,
                                                    Run.sends == run.sends).values(enqueued_at=t))
            session.commit()
            if res.rowcount and enqueue(session, settings, run):
                out["resent"] += 1
    return out


# ---------------------------------------------------------------- view
def run_view(run: Run) -> dict:
    metrics = {k: v for k, v in (run.metrics or {}).items() if k != "per_image"}
    lh = run.loss_history or []
    return {
        "id": run.id, "project_id": run.project_id, "kind": run.kind.value, "status": run.status.value,
        "config": run.config, "phase": run.phase, "progress": run.progress or 0.0, "step": run.step or 0,
        "total_steps": run.total_steps, "loss_history": lh, "learning_rate": run.learning_rate,
        "samples_per_s": run.samples_per_s, "eta_seconds": run.eta_seconds, "log_tail": run.log_tail or [],
        "metrics": metrics, "error": run.error, "traceback": run.traceback, "adapter_bytes": run.adapter_bytes,
        "merged": bool(run.merged_path), "snapshot_id": run.snapshot_id, "snapshot_sha256": _snapshot_sha(run),
        "attempts": run.attempts,
        "max_attempts": run.max_attempts, "cancel_requested": bool(run.cancel_requested),
        "worker_id": run.worker_id, "heartbeat_at": _iso(run.heartbeat_at), "version": run.version,
        "created_at": _iso(run.created_at), "started_at": _iso(run.started_at), "ended_at": _iso(run.ended_at),
        "parent_run_id": run.parent_run_id,
    }


def _snapshot_sha(run: Run) -> str | None:
    """The frozen dataset's content hash: two runs with the same one trained and scored on the same data."""
    from sqlalchemy.orm import object_session

    s = object_session(run)
    return s.scalar(select(Snapshot.sha256).where(Snapshot.id == run.snapshot_id)) if s and run.snapshot_id else None


def _iso(dt: datetime | None) -> str | None:
    return aware(dt).isoformat() if dt is not None else None


def list_runs(session: Session, project_id: int, limit: int = 100, offset: int = 0) -> dict:
    total = session.scalar(select(func.count()).select_from(Run).where(Run.project_id == project_id))
    runs = session.scalars(select(Run).where(Run.project_id == project_id).order_by(Run.id.desc())
                           .offset(offset).limit(limit)).all()
    items = []
    for r in runs:
        v = run_view(r)
        for k in ("loss_history", "log_tail", "traceback"):
            v.pop(k)
        v["config"] = {k: x for k, x in v["config"].items() if k != "image_ids"}  # the list shows the configuration
        items.append(v)
    return {"items": items, "total": total}


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


__all__ = ["RunConfig", "create_run", "cancel_run", "run_view", "reap", "reap_run", "enqueue", "run_dir",
           "freeze_snapshot", "load_snapshot", "store_results"]
