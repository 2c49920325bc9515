"""Pydantic request/response models of the REST API (users, projects, labels, images, boxes).

Requests forbid unknown fields, so a typo in a field name is a 422 naming it rather than a silent no-op.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from backend.models import BoxSource, ImageStatus, Role


# Integer columns are 32-bit on PostgreSQL (and SQLite overflows past 64 bits): an id outside that
# range cannot name a row, so it is a 422 at the edge, never a driver error. One type for path,
# query and body ids alike.
INT32_MAX = 2**31 - 1
Id = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
Version = Annotated[int, Field(ge=0, le=INT32_MAX)]
Offset = Annotated[int, Field(ge=0, le=INT32_MAX)]


def _utc(d: datetime) -> datetime:
    return d if d.tzinfo is not None else d.replace(tzinfo=timezone.utc)


# SQLite hands back naive datetimes (stored in UTC); say so, so every timestamp is an RFC 3339 date-time.
UtcDateTime = Annotated[datetime, AfterValidator(_utc)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ---------------------------------------------------------------- users and tokens
Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                            pattern=r"^[A-Za-z0-9_.@-]+$")]


class UserCreate(_In):
    username: Username
    is_admin: bool = False


class UserOut(_Out):
    id: int
    username: str
    is_admin: bool
    created_at: UtcDateTime


class TokenCreate(_In):
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)] = ""


class TokenOut(_Out):
    id: int
    name: str
    prefix: str
    created_at: UtcDateTime
    last_used_at: UtcDateTime | None = None


class TokenIssued(TokenOut):
    token: str = Field(description="The plaintext token; shown this once, stored only as a hash.")


# ---------------------------------------------------------------- labels
LabelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Color = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^#[0-9a-fA-F]{6}$"),
                  AfterValidator(str.lower)]
# One key the annotation UI can bind: a single letter, digit or symbol (no whitespace).
Hotkey = Annotated[str, StringConstraints(pattern=r"^\S$")]


class LabelCreate(_In):
    name: LabelName
    color: Color = "#e6194b"
    hotkey: Hotkey | None = None


class LabelPatch(_In):
    name: LabelName | None = None
    color: Color | None = None
    hotkey: Hotkey | None = None


class LabelOut(_Out):
    id: int
    project_id: int
    name: str
    color: str
    hotkey: str | None


# ---------------------------------------------------------------- projects and members
ProjectName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
TaskKind = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class ProjectCreate(_In):
    name: ProjectName
    description: Annotated[str, Field(max_length=10_000)] = ""
    task_kinds: Annotated[list[TaskKind], Field(min_length=1, max_length=16)] = ["detection"]
    labels: Annotated[list[LabelCreate], Field(max_length=1000)] = []


class ProjectPatch(_In):
    name: ProjectName | None = None
    description: Annotated[str, Field(max_length=10_000)] | None = None
    task_kinds: Annotated[list[TaskKind], Field(min_length=1, max_length=16)] | None = None


class ProjectOut(_Out):
    id: int
    name: str
    description: str
    task_kinds: list[str]
    created_at: UtcDateTime
    role: Role | None = Field(None, description="The caller's role in the project.")


class ProjectDetail(ProjectOut):
    labels: list[LabelOut]
    image_count: int
    counts: dict[ImageStatus, int] = Field(description="Number of images per review status.")


class MemberAdd(_In):
    user_id: Id | None = None
    username: Username | None = None
    role: Role

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v


class MemberPatch(_In):
    role: Role


class MemberOut(BaseModel):
    user_id: int
    username: str
    role: Role


# ---------------------------------------------------------------- boxes
# Finite coordinates only: JSON parsers accept NaN / Infinity / 1e999, a box must not.
Coord = Annotated[float, Field(allow_inf_nan=False)]


class BoxCreate(_In):
    label_id: Id
    x1: Coord
    y1: Coord
    x2: Coord
    y2: Coord


class BoxPatch(_In):
    version: Version = Field(description="The version the client read; a stale one gets 409.")
    label_id: Id | None = None
    x1: Coord | None = None
    y1: Coord | None = None
    x2: Coord | None = None
    y2: Coord | None = None
    # replaced whole (e.g. {"kart": "tux", "visible": true}); flat values only
    attributes: dict[Annotated[str, Field(min_length=1, max_length=64)],
                     Annotated[str, Field(max_length=500)] | int | float | bool | None] | None = Field(None, max_length=50)


class BoxCompact(_Out):
    id: int
    label_id: int
    x1: float
    y1: float
    x2: float
    y2: float


class BoxOut(BoxCompact):
    image_id: int
    source: BoxSource
    score: float | None
    attributes: dict
    version: int
    updated_by_id: int | None
    updated_at: UtcDateTime


# ---------------------------------------------------------------- images
Split = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class ImageItem(_Out):
    id: int
    file_name: str
    width: int
    height: int
    split: str | None
    status: ImageStatus
    box_count: int
    boxes: list[BoxCompact]


class ImagePage(BaseModel):
    items: list[ImageItem]
    total: int | None = Field(description="matching images; null when with_total=false")
    offset: int
    limit: int


class ImageDetail(_Out):
    id: int
    project_id: int
    file_name: str
    sha256: str
    ext: str
    width: int
    height: int
    split: str | None
    status: ImageStatus
    meta: dict
    reviewed_by_id: int | None
    reviewed_by: str | None = None
    reviewed_at: UtcDateTime | None
    created_at: UtcDateTime
    boxes: list[BoxOut]


class ImagePatch(_In):
    # `split: null` clears the split; a field left out is left alone.
    split: Split | None = None
    meta: dict | None = None


class StatusIn(_In):
    status: ImageStatus


class BulkImagePatch(_In):
    ids: Annotated[list[Id], Field(min_length=1, max_length=5000)]
    status: ImageStatus | None = None
    split: Split | None = None


class BulkResult(BaseModel):
    updated: int


class UploadResult(BaseModel):
    created: int
    images: list[ImageItem]
    skipped: list[str] = Field(description="Archive members that are not images (by extension), not imported.")


# ---------------------------------------------------------------- QA pairs and splits (backend/qa, backend/splits.py)
class QAGenerateIn(_In):
    families: Annotated[list[str], Field(min_length=1, max_length=32)]
    per_image_cap: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        None, description="at most this many pairs per image and family (null: no cap)")
    seed: int = 0
    negatives_ratio: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 0.5
    options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per family, e.g. {\"spatial\": {\"max_pairs\": 2}}")

    @field_validator("families")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from backend.qa import FAMILIES

        unknown = [f for f in v if f not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown family {', '.join(map(repr, unknown))} (known: {', '.join(FAMILIES)})")
        return v


class QAGenerateOut(BaseModel):
    counts: dict[str, dict[str, int]] = Field(description="pairs per family and split ('unassigned': no split)")
    total: int
    images: int


class QAItemOut(BaseModel):
    id: int
    image_id: int
    file_name: str
    family: str
    template_id: str
    question: str = Field(description="may hold {box0} ... placeholders for params.boxes[N]")
    answer: str
    params: dict
    source: str
    reviewed: bool
    split: str | None
    display_question: str = Field(description="question with the placeholders rendered as pixel boxes")
    display_answer: str
    stale: bool = Field(False, description="the image's boxes changed since the pair was generated")


class QAPage(BaseModel):
    items: list[QAItemOut]
    total: int
    offset: int
    limit: int


class QAPatch(_In):
    question: Annotated[str, StringConstraints(min_length=1, max_length=10_000)] | None = None
    answer: Annotated[str, Field(max_length=100_000)] | None = None
    reviewed: bool | None = None


class QAReviewIn(_In):
    ids: Annotated[list[Id], Field(min_length=1, max_length=5000)]
    reviewed: bool


SplitName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class SplitIn(_In):
    mode: Literal["image", "group", "track"]
    key: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        None, description="meta key of the groups: default race_id (group mode), track (track mode)")
    ratios: dict[SplitName, Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]] | None = None
    held_out: dict[SplitName, list[Annotated[str, StringConstraints(min_length=1, max_length=200)]]] | None = None
    seed: int = 0
    dry_run: bool = Field(False, description="preview: the counts and the leak check, nothing written")
    check_key: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        None, description="meta key the preview's leak check groups by (default: key, or race_id in image mode)")


class SplitOut(BaseModel):
    counts: dict[str, int] = Field(description="images per split")
    groups: dict[str, int] = Field(description="groups per split")
    ungrouped: int = Field(description="images without the key: each is its own group")
    leaks: list["Leak"] | None = Field(None, description="dry_run: groups of check_key the split would straddle")
    check_key: str | None = None


class Leak(BaseModel):
    group: str
    splits: dict[str, int]


class SplitCheck(BaseModel):
    ok: bool
    key: str
    leaks: list[Leak]


# ---------------------------------------------------------------- runs (issue #5)
class RunCreate(_In):
    kind: Literal["train", "evaluate", "predict"]
    config: dict[str, Any] = Field(description="see backend.runs.RunConfig; validated before anything is queued")
    dry_run: bool = Field(False, description="validate and return the memory estimate; queue nothing")


class AcceptIn(_In):
    image_ids: list[Id] = Field(min_length=1, max_length=100_000)
    min_score: float = Field(0.0, ge=0.0, le=1.0)


class AcceptOut(BaseModel):
    created: int = Field(description="model boxes added")
    skipped: int = Field(description="predicted boxes below min_score, with an unknown label, or already there")
    images: int
