"""ORM tables. Box coordinates are always absolute pixels of the original image, x1 y1 x2 y2."""
from __future__ import annotations

import enum
import unicodedata
from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    # Named constraints so Alembic migrations are portable between SQLite and PostgreSQL.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Role(str, enum.Enum):
    viewer = "viewer"
    annotator = "annotator"
    admin = "admin"


ROLE_RANK = {Role.viewer: 0, Role.annotator: 1, Role.admin: 2}


class ImageStatus(str, enum.Enum):
    unlabeled = "unlabeled"
    in_review = "in_review"
    accepted = "accepted"
    rejected = "rejected"


class BoxSource(str, enum.Enum):
    human = "human"
    import_ = "import"
    model = "model"


def _enum(e: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings (no native PG enum) so adding a value is a one-line change.
    return Enum(e, name=name, native_enum=False, values_callable=lambda x: [m.value for m in x], length=16)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    # sha256 of the token: a leaked database does not leak usable tokens.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user: Mapped[User] = relationship()


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    task_kinds: Mapped[list] = mapped_column(JSON, default=lambda: ["detection"])
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    labels: Mapped[list[Label]] = relationship(back_populates="project", cascade="all, delete-orphan", order_by="Label.id")


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    user: Mapped[User] = relationship()


def label_key(name: str) -> str:
    """A label name as compared for uniqueness: Unicode-normalised, case-folded, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("project_id", "name"),
                      UniqueConstraint("project_id", "name_key", name="uq_labels_project_name_key"))
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # label_key(name), unique per project in the database ("Kart" and "kart" are one label, even when
    # created concurrently). Core inserts get it from the default, ORM writes from _key below.
    name_key: Mapped[str] = mapped_column(
        String(400), default=lambda ctx: label_key(ctx.get_current_parameters()["name"]))
    color: Mapped[str] = mapped_column(String(16), default="#e6194b")
    hotkey: Mapped[str | None] = mapped_column(String(8), nullable=True)
    project: Mapped[Project] = relationship(back_populates="labels")

    @validates("name")
    def _key(self, _field: str, name: str) -> str:
        self.name_key = label_key(name)
        return name


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("project_id", "file_name"),
        Index("ix_images_project", "project_id", "id"),  # the grid's page order within a project
        Index("ix_images_project_status", "project_id", "status", "id"),
        Index("ix_images_project_split", "project_id", "split", "id"),
        # File-name search (ILIKE '%q%') on PostgreSQL: a trigram GIN index instead of a full scan.
        # Only created on PostgreSQL (see migration 0002); other databases scan.
        Index("ix_images_file_name_trgm", "file_name", postgresql_using="gin",
              postgresql_ops={"file_name": "gin_trgm_ops"}, info={"postgresql_only": True}),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_name: Mapped[str] = mapped_column(String(512))
    ext: Mapped[str] = mapped_column(String(8))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    split: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[ImageStatus] = mapped_column(_enum(ImageStatus, "image_status"), default=ImageStatus.unlabeled)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    boxes: Mapped[list[Box]] = relationship(back_populates="image", cascade="all, delete-orphan", order_by="Box.id")


class Box(Base):
    __tablename__ = "boxes"
    __table_args__ = (Index("ix_boxes_label_image", "label_id", "image_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"))
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    source: Mapped[BoxSource] = mapped_column(_enum(BoxSource, "box_source"), default=BoxSource.human)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Extra per-box facts from imports, e.g. a SuperTuxKart kart's name and id.
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    # Optimistic locking: every write must name the version it read; a stale one gets 409.
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    image: Mapped[Image] = relationship(back_populates="boxes")
    label: Mapped[Label] = relationship()


class QASource(str, enum.Enum):
    generated = "generated"
    human = "human"


class QAPair(Base):
    """One question/answer (or instruction) pair about an image, stored family-neutral.

    `question` / `answer` may hold `{box0}`, `{box1}` ... placeholders; `params["boxes"]` lists those
    boxes (label + pixel x1 y1 x2 y2 of the original image) in order, and each model family's codec
    renders them in its own syntax at training time. The split is the image's (join, never copied).
    """

    __tablename__ = "qa_pairs"
    __table_args__ = (
        Index("ix_qa_pairs_project_family", "project_id", "family", "id"),
        Index("ix_qa_pairs_image", "image_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # The image's project, copied for the per-project filters. No foreign key of its own: deleting a
    # project deletes its images and they cascade here; a second FK check per row would double the
    # cost of bulk-inserting 300k generated pairs on PostgreSQL.
    project_id: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    family: Mapped[str] = mapped_column(String(32))
    template_id: Mapped[str] = mapped_column(String(64))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    source: Mapped[QASource] = mapped_column(_enum(QASource, "qa_source"), default=QASource.generated)
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    # backend.qa.stale: the image's boxes when generated; differs from now = a stale pair
    boxes_sig: Mapped[str | None] = mapped_column(String(40), nullable=True)


class RunKind(str, enum.Enum):
    train = "train"
    evaluate = "evaluate"
    predict = "predict"


class RunStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = (RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled)


class Snapshot(Base):
    """A frozen copy of what a run trains / evaluates on: images (id, file, size, split), their boxes
    and QA pairs, as they were at launch, with the sha256 of that content (same data = same hash).
    Stored in full, not as ids, so later edits to the boxes do not change what the run saw: as rows
    of snapshot_images / snapshot_boxes / snapshot_qa (issue 14); `content` keeps labels and splits."""

    __tablename__ = "snapshots"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    n_images: Mapped[int] = mapped_column(Integer, default=0)
    n_boxes: Mapped[int] = mapped_column(Integer, default=0)
    n_qa: Mapped[int] = mapped_column(Integer, default=0)
    content: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# Snapshot rows carry no foreign key to snapshots: PostgreSQL checks one per inserted row, which was
# half the time of freezing 600k boxes. Trigger snapshots_cascade (migration 0010) deletes them with
# their snapshot instead.
class SnapshotImage(Base):
    __tablename__ = "snapshot_images"
    snapshot_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # no FK: the record outlives the image
    sha256: Mapped[str] = mapped_column(String(64))
    ext: Mapped[str] = mapped_column(String(8))
    file_name: Mapped[str] = mapped_column(String(512))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    split: Mapped[str | None] = mapped_column(String(64), nullable=True)


class SnapshotBox(Base):
    __tablename__ = "snapshot_boxes"
    # Two indexes, one per access path: an image's boxes (gallery page, load_snapshot in image order)
    # and the images having a label (gallery label filter).
    __table_args__ = (PrimaryKeyConstraint("snapshot_id", "image_id", "box_id", name="pk_snapshot_boxes"),
                      Index("ix_snapshot_boxes_label", "snapshot_id", "label", "image_id"))
    snapshot_id: Mapped[int] = mapped_column(Integer)
    box_id: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(100))
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)


class SnapshotQA(Base):
    __tablename__ = "snapshot_qa"
    __table_args__ = (Index("ix_snapshot_qa_image", "snapshot_id", "image_id"),)
    snapshot_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    qa_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(Integer)
    family: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[str] = mapped_column(String(128))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSON, default=dict)


class RunImageResult(Base):
    """Per held-out image of a run: detection stats before / after and the change of F1, so the
    gallery sorts, filters and pages in SQL (issue 14)."""

    __tablename__ = "run_image_results"
    # The gallery's orders, each an index scan that stops at the page: most_regressed (change ASC
    # NULLS LAST, image_id) and most_improved (change DESC NULLS LAST, image_id); image order is the key.
    __table_args__ = (Index("ix_run_image_results_change", "run_id", "change", "image_id"),)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    split: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tp_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fp_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fn_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    wrong_label_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    f1_before: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean_iou_before: Mapped[float | None] = mapped_column(Float, nullable=True)
    tp_after: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fp_after: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fn_after: Mapped[int | None] = mapped_column(Integer, nullable=True)
    wrong_label_after: Mapped[int | None] = mapped_column(Integer, nullable=True)
    f1_after: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean_iou_after: Mapped[float | None] = mapped_column(Float, nullable=True)
    change: Mapped[float | None] = mapped_column(Float, nullable=True)


# most_improved's order (migration 0010 creates it; SQLite, where NULL sorts lowest, as `change DESC`)
Index("ix_run_image_results_improved", RunImageResult.run_id, RunImageResult.change.desc().nulls_last(),
      RunImageResult.image_id)


class Run(Base):
    """A train / evaluate / predict job. The row is the source of truth; the queue only carries its id.

    Crash safety: the executing worker holds a lease (`worker_id`, `lease_expires_at`) that a
    heartbeat thread renews; a reaper re-queues (or fails) runs whose lease expired.
    """

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_project", "project_id", "id"),
        Index("ix_runs_status_lease", "status", "lease_expires_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[RunKind] = mapped_column(_enum(RunKind, "run_kind"))
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "run_status"), default=RunStatus.queued)
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id", ondelete="SET NULL"), nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # queue / lease bookkeeping
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # live progress
    phase: Mapped[str | None] = mapped_column(String(32), nullable=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    loss_history: Mapped[list] = mapped_column(JSON, default=list)
    learning_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    samples_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    eta_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    log_tail: Mapped[list] = mapped_column(JSON, default=list)
    # results
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    adapter_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    adapter_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # lm_head adapters pass 2 GB
    merged_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    # Bumped on every write, so the SSE stream can tell a change from a poll that saw nothing new.
    version: Mapped[int] = mapped_column(Integer, default=0)
    # "Retrain with the corrections": the run this one was retrained from (backend/loop.py).
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True,
                                                      index=True)


class Prediction(Base):
    """One model output of a run on one image in one phase (before / after / predict).

    detect: one row per decoded box (label, x1..y2, score); an image whose output decoded to no box
    gets one row with label NULL, so its raw text is still kept. vqa: one row per question with the
    question, the expected and the predicted answer, and `correct`.
    """

    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_run_phase_image", "run_id", "phase", "image_id"),
                      # the gallery's label filter: a run's images with a predicted label
                      Index("ix_predictions_run_label", "run_id", "label", "phase", "image_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    # No FK to images: a run's record outlives an image deleted later (the snapshot has its facts).
    image_id: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(16))
    task: Mapped[str] = mapped_column(String(8), default="detect")
    label: Mapped[str | None] = mapped_column(String(100), nullable=True)
    x1: Mapped[float | None] = mapped_column(Float, nullable=True)
    y1: Mapped[float | None] = mapped_column(Float, nullable=True)
    x2: Mapped[float | None] = mapped_column(Float, nullable=True)
    y2: Mapped[float | None] = mapped_column(Float, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    raw_text: Mapped[str] = mapped_column(Text, default="")
    qtype: Mapped[str | None] = mapped_column(String(64), nullable=True)
    question: Mapped[str | None] = mapped_column(Text, nullable=True)
    expected: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    correct: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class ReviewItem(Base):
    """One image a run sent back to review (backend/loop.py), at its place in that run's queue:
    the worst by change or error kind, or the most uncertain of a predict run."""

    __tablename__ = "review_items"
    __table_args__ = (
        UniqueConstraint("run_id", "image_id"),
        Index("ix_review_items_project_run_rank", "project_id", "run_id", "rank"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
