"""ORM tables. Box coordinates are always absolute pixels of the original image, x1 y1 x2 y2."""
from __future__ import annotations

import enum
from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


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


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("project_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    color: Mapped[str] = mapped_column(String(16), default="#e6194b")
    hotkey: Mapped[str | None] = mapped_column(String(8), nullable=True)
    project: Mapped[Project] = relationship(back_populates="labels")


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("project_id", "file_name"),
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
