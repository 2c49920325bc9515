"""Images: all-or-nothing upload (files or a zip), the paged grid list, one image, its bytes and
thumbnail, split/meta edits, the review status, bulk edits from a multi-select, and delete."""
from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, UploadFile, status
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel
from sqlalchemy import exists, func, null, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.api.disposition import content_disposition
from backend.api.deps import Id, DB, CurrentUser, SettingsDep, Store, get_project, project_row
from backend.errors import InvalidInput, StudioError, TooLarge
from backend.models import Box, Image, ImageStatus, Label, Role, User
from backend.schemas import (
    INT32_MAX,
    BulkImagePatch,
    BulkResult,
    ImageDetail,
    ImageItem,
    ImagePage,
    ImagePatch,
    StatusIn,
    UploadResult,
)
from backend.storage import IMAGE_SUFFIXES, CheckedImage, ImageStore, check_image, read_zip, safe_member_name

router = APIRouter(tags=["images"])

MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "bmp": "image/bmp",
               "gif": "image/gif", "tif": "image/tiff"}
# The review workflow; accepted/rejected may be reopened for another look.
TRANSITIONS: dict[ImageStatus, set[ImageStatus]] = {
    ImageStatus.unlabeled: {ImageStatus.in_review},
    ImageStatus.in_review: {ImageStatus.accepted, ImageStatus.rejected, ImageStatus.unlabeled},  # back: undo
    ImageStatus.accepted: {ImageStatus.in_review},
    ImageStatus.rejected: {ImageStatus.in_review},
}
CHUNK = 1000  # ids per IN (...) list: well under SQLite's bound-parameter limit


def _chunks(seq: Sequence, n: int = CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def get_image(db: Session, user: User, image_id: int, need: Role = Role.viewer) -> Image:
    """The image if `user` may act on its project with role `need`; 404 for non-members."""
    return project_row(db, user, Image, image_id, "image", need)


def drop_unreferenced(db: Session, store: ImageStore, files: Sequence[tuple[str, str]]) -> None:
    """Remove stored files that no image row points at any more (the store is shared by content)."""
    for chunk in _chunks(list(files)):
        still = set(db.scalars(select(Image.sha256).where(Image.sha256.in_([s for s, _ in chunk])).distinct()))
        for sha, ext in chunk:
            if sha not in still:
                store.remove(sha, ext)


# ---------------------------------------------------------------- upload
def _read_capped(upload: UploadFile, cap: int) -> bytes:
    data = upload.file.read(cap + 1)
    if len(data) > cap:
        raise TooLarge(f"{upload.filename}: over the upload cap of {cap} bytes")
    return data


def _collect(files: list[UploadFile], settings) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Expand zips into (file name, bytes) pairs; return also the non-image archive members skipped."""
    out: list[tuple[str, bytes]] = []
    skipped: list[str] = []
    for f in files:
        raw_name = f.filename or ""
        if not raw_name.strip():
            raise InvalidInput("an uploaded file has no file name")
        if raw_name.lower().endswith(".zip"):
            data = _read_capped(f, settings.max_archive_bytes)
            not_images: list[str] = []
            try:  # members that are not images are never inflated
                members = read_zip(data, max_members=settings.max_archive_members,
                                   max_total_bytes=settings.max_archive_bytes,
                                   max_member_bytes=settings.max_upload_bytes, skipped=not_images,
                                   keep=lambda n: posixpath.splitext(n)[1].lower() in IMAGE_SUFFIXES)
            except StudioError as e:
                raise type(e)(f"{raw_name}: {e.message}") from None
            out += sorted(members.items())
            skipped += [f"{raw_name}:{name}" for name in sorted(not_images)]
        else:
            try:
                name = safe_member_name(raw_name)
            except InvalidInput as e:
                raise InvalidInput(f"file name {raw_name!r} is not allowed: {e.message}") from None
            out.append((name, _read_capped(f, settings.max_upload_bytes)))
    return out, skipped


@router.post("/projects/{project_id}/images", response_model=UploadResult, status_code=status.HTTP_201_CREATED)
def upload_images(db: DB, user: CurrentUser, store: Store, settings: SettingsDep, project_id: Id,
                  files: list[UploadFile]) -> UploadResult:
    """Upload images (multipart field `files`, repeated) and/or zips of images. All or nothing:
    every file is checked before any is stored, and a failed database write removes the new files."""
    get_project(db, user, project_id, Role.annotator)
    named, skipped = _collect(files, settings)
    if not named:
        raise InvalidInput("no image files in the upload")

    # 1. Check everything; report every bad file at once so a user can fix a batch in one go.
    checked: list[tuple[str, CheckedImage]] = []
    problems: list[StudioError] = []
    seen: set[str] = set()
    for name, data in named:
        if len(name) > 512:
            problems.append(InvalidInput(f"{name[:60]}...: file name is longer than 512 characters"))
            continue
        if name in seen:
            problems.append(InvalidInput(f"{name}: appears twice in this upload"))
            continue
        seen.add(name)
        try:
            checked.append((name, check_image(data, name, max_bytes=settings.max_upload_bytes,
                                              max_pixels=settings.max_image_pixels)))
        except StudioError as e:
            problems.append(e)
    if problems:
        err_type = TooLarge if any(isinstance(p, TooLarge) for p in problems) else InvalidInput
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise err_type("; ".join(p.message for p in problems[:10]) + more)
    for chunk in _chunks([n for n, _ in checked]):
        dup = db.scalars(select(Image.file_name).where(Image.project_id == project_id,
                                                       Image.file_name.in_(chunk)).limit(5)).all()
        if dup:
            raise HTTPException(409, f"file name already in the project: {', '.join(dup)}")

    # 2. Store, then insert in one transaction; undo exactly the newly written files on failure.
    new_files: list[tuple[str, str]] = []
    try:
        rows = []
        for name, img in checked:
            if store.put(img):
                new_files.append((img.sha256, img.ext))
            rows.append(Image(project_id=project_id, sha256=img.sha256, file_name=name, ext=img.ext,
                              width=img.width, height=img.height, status=ImageStatus.unlabeled, meta={}))
        db.add_all(rows)
        db.commit()
    except BaseException as e:
        db.rollback()
        for sha, ext in new_files:
            store.remove(sha, ext)
        if isinstance(e, IntegrityError):  # a concurrent upload may have taken one of the names
            taken = [n for chunk in _chunks([n for n, _ in checked]) for n in db.scalars(
                select(Image.file_name).where(Image.project_id == project_id, Image.file_name.in_(chunk)))]
            if taken:
                raise HTTPException(409, f"file name already in the project: {', '.join(taken[:5])} "
                                         "(a concurrent upload); nothing was imported") from None
        raise
    items = [ImageItem(id=r.id, file_name=r.file_name, width=r.width, height=r.height, split=r.split,
                       status=r.status, box_count=0, boxes=[]) for r in rows]
    return UploadResult(created=len(items), images=items, skipped=skipped)


# ---------------------------------------------------------------- list
def _label_id(db: Session, project_id: int, label: str) -> int:
    """`label` is a label id or name of the project."""
    cond = func.lower(Label.name) == label.strip().lower()
    if label.strip().isdigit() and int(label) <= INT32_MAX:  # a longer number is no id (and overflows the driver)
        cond = (Label.id == int(label)) | cond
    found = db.scalar(select(Label.id).where(Label.project_id == project_id, cond).order_by(Label.id).limit(1))
    if found is None:
        raise InvalidInput(f"label: {label!r} is not a label id or name of project {project_id}")
    return found


def _like_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class StatusCount(BaseModel):
    split: str | None
    status: ImageStatus
    n: int


@router.get("/projects/{project_id}/images/counts", response_model=list[StatusCount])
def status_counts(db: DB, user: CurrentUser, project_id: Id) -> list[StatusCount]:
    """Images per (split, status): what a run with a given image_status filter would use."""
    get_project(db, user, project_id)
    rows = db.execute(select(Image.split, Image.status, func.count()).where(Image.project_id == project_id)
                      .group_by(Image.split, Image.status).order_by(Image.split, Image.status))
    return [StatusCount(split=sp, status=st, n=n) for sp, st, n in rows]


@router.get("/projects/{project_id}/images", response_model=ImagePage)
def list_images(
    db: DB, user: CurrentUser, project_id: Id,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    status: ImageStatus | None = None,
    label: Annotated[str | None, Query(max_length=100, description="label id or name")] = None,
    split: Annotated[str | None, Query(max_length=32)] = None,
    has_boxes: bool | None = None,
    q: Annotated[str | None, Query(max_length=512, description="substring of the file name")] = None,
    meta_key: Annotated[str | None, Query(min_length=1, max_length=100, description="with meta_value: images whose meta has it")] = None,
    meta_value: Annotated[str | None, Query(max_length=200)] = None,
    after_id: Annotated[int | None, Query(ge=0, le=2**63 - 1, description=(
        "keyset paging: only images with a larger id (with offset=0, a deep page costs as much as the first)"))] = None,
    with_total: Annotated[bool, Query(description="false skips counting (total is null): cheaper when scrolling")] = True,
) -> Response:
    """One page of the grid in id order: one query (page, boxes, count), whatever the page size."""
    get_project(db, user, project_id)
    conds = [Image.project_id == project_id]
    if after_id is not None:
        conds.append(Image.id > after_id)
    if status is not None:
        conds.append(Image.status == status)
    if split is not None:
        conds.append(Image.split == split)
    lid = None
    if label is not None:
        lid = _label_id(db, project_id, label)
        conds.append(exists().where(Box.image_id == Image.id, Box.label_id == lid))
    if has_boxes is not None:
        any_box = exists().where(Box.image_id == Image.id)
        conds.append(any_box if has_boxes else ~any_box)
    if (meta_key is None) != (meta_value is None):
        raise HTTPException(422, "meta_key and meta_value: give both (e.g. meta_key=race_id&meta_value=r1) or neither")
    if meta_key is not None:
        conds.append(Image.meta[meta_key].as_string() == meta_value)
    if q:
        pattern = f"%{_like_escape(q)}%"
        # ILIKE is several times slower than LIKE on PostgreSQL; with no letters in q (frame numbers)
        # case cannot matter, so use the plain LIKE.
        conds.append(Image.file_name.like(pattern, escape="\\") if q.lower() == q.upper()
                     else Image.file_name.ilike(pattern, escape="\\"))

    cols = [Image.id, Image.file_name, Image.width, Image.height, Image.split, Image.status]
    count_q = select(func.count()).select_from(Image).where(*conds)
    if lid is not None and len(conds) == 2:
        # Label is the only filter (labels belong to one project): count its distinct images on
        # the (label_id, image_id) index alone, without joining 100k image rows.
        count_q = select(func.count()).select_from(select(Box.image_id).where(Box.label_id == lid).distinct().subquery())
    if q and with_total:
        # A substring match scans every row of the project (no trigram index): count in the same
        # scan with a window function instead of scanning twice.
        cols.append(func.count().over().label("total"))
    page = select(*cols).where(*conds).order_by(Image.id).offset(offset).limit(limit).cte("page")
    total_col = (page.c.total if q and with_total else count_q.scalar_subquery().correlate(None) if with_total
                 else null()).label("total")
    # One round trip for the page, its boxes and the count (an uncorrelated subquery: computed once).
    rows = db.execute(
        select(page.c.id, page.c.file_name, page.c.width, page.c.height, page.c.split, page.c.status, total_col,
               Box.id, Box.label_id, Box.x1, Box.y1, Box.x2, Box.y2)
        .outerjoin(Box, Box.image_id == page.c.id).order_by(page.c.id, Box.id)).all()
    items: list[dict] = []
    for r in rows:
        if not items or items[-1]["id"] != r[0]:
            items.append({"id": r[0], "file_name": r[1], "width": r[2], "height": r[3], "split": r[4],
                          "status": ImageStatus(r[5]).value, "box_count": 0, "boxes": []})
        if r[7] is not None:
            items[-1]["boxes"].append({"id": r[7], "label_id": r[8], "x1": r[9], "y1": r[10], "x2": r[11], "y2": r[12]})
    for it in items:
        it["box_count"] = len(it["boxes"])
    total = rows[0][6] if rows else (db.scalar(count_q) if with_total else None)
    # Built as JSON directly: 300 Pydantic models per page (50 items, 250 boxes), then the response
    # model's validation in one more thread hop, were a fifth of the request's Python time. The shape
    # is ImagePage's, as documented (tests/api/test_images.py checks it).
    body = json.dumps({"items": items, "total": total, "offset": offset, "limit": limit},
                      ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Response(body.encode(), media_type="application/json")


# ---------------------------------------------------------------- one image
def _detail(db: Session, image: Image) -> ImageDetail:
    out = ImageDetail.model_validate(image)
    if image.reviewed_by_id is not None:
        out.reviewed_by = db.scalar(select(User.username).where(User.id == image.reviewed_by_id))
    return out


@router.get("/images/{image_id}", response_model=ImageDetail)
def read_image(db: DB, user: CurrentUser, image_id: Id) -> ImageDetail:
    return _detail(db, get_image(db, user, image_id))


# Content-addressed: the bytes behind an image id never change, so browsers may cache them.
_CACHE = {"Cache-Control": "private, max-age=86400"}


@router.get("/images/{image_id}/file", response_class=FileResponse)
def image_file(db: DB, user: CurrentUser, store: Store, image_id: Id) -> FileResponse:
    image = get_image(db, user, image_id)
    path = store.path(image.sha256, image.ext)
    if not path.exists():
        raise HTTPException(404, f"image {image_id}: its file is missing from the store")
    return FileResponse(path, media_type=MEDIA_TYPES.get(image.ext, "application/octet-stream"),
                        headers={**_CACHE, "Content-Disposition": content_disposition(
                            posixpath.basename(image.file_name), "inline")})


@router.get("/images/{image_id}/thumbnail", response_class=FileResponse)
def image_thumbnail(db: DB, user: CurrentUser, store: Store, image_id: Id) -> FileResponse:
    image = get_image(db, user, image_id)
    if not store.path(image.sha256, image.ext).exists():
        raise HTTPException(404, f"image {image_id}: its file is missing from the store")
    return FileResponse(store.thumbnail(image.sha256, image.ext), media_type="image/jpeg", headers=_CACHE)


@router.patch("/images/{image_id}", response_model=ImageDetail)
def patch_image(db: DB, user: CurrentUser, image_id: Id, body: ImagePatch) -> ImageDetail:
    """`split` (null clears it) and `meta` (replaced whole); fields left out are left alone."""
    image = get_image(db, user, image_id, Role.annotator)
    if "split" in body.model_fields_set:
        image.split = body.split
    if "meta" in body.model_fields_set:
        if body.meta is None:
            raise HTTPException(422, "meta: may not be null (send {} to clear it)")
        image.meta = body.meta
    db.flush()
    return _detail(db, image)


@router.delete("/images/{image_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_image(db: DB, user: CurrentUser, store: Store, image_id: Id) -> None:
    image = get_image(db, user, image_id, Role.admin)
    files = [(image.sha256, image.ext)]
    db.delete(image)
    db.commit()  # the row is gone for good before the file goes
    drop_unreferenced(db, store, files)


# ---------------------------------------------------------------- review status
def _check_transition(image_id: int, old: ImageStatus, new: ImageStatus) -> None:
    if new not in TRANSITIONS[ImageStatus(old)]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[ImageStatus(old)]))
        raise HTTPException(409, f"image {image_id}: cannot go from '{ImageStatus(old).value}' to "
                                 f"'{new.value}' (allowed from '{ImageStatus(old).value}': {allowed})")


@router.post("/images/{image_id}/status", response_model=ImageDetail)
def set_status(db: DB, user: CurrentUser, image_id: Id, body: StatusIn) -> ImageDetail:
    image = get_image(db, user, image_id, Role.annotator)
    old = image.status
    _check_transition(image_id, old, body.status)
    # Conditional on the state we checked: of two concurrent reviewers only one moves it.
    res = db.execute(
        update(Image).where(Image.id == image_id, Image.status == old)
        .values(status=body.status, reviewed_by_id=user.id, reviewed_at=datetime.now(timezone.utc))
    )
    if res.rowcount != 1:
        db.rollback()
        raise HTTPException(409, f"image {image_id}: its status changed meanwhile; reload and retry")
    db.refresh(image)
    return _detail(db, image)


@router.patch("/projects/{project_id}/images", response_model=BulkResult)
def bulk_patch(db: DB, user: CurrentUser, project_id: Id, body: BulkImagePatch) -> BulkResult:
    """Set the status and/or split of many images at once; all of them or none."""
    get_project(db, user, project_id, Role.annotator)
    fields = body.model_fields_set - {"ids"}
    if not fields:
        raise HTTPException(422, "give status and/or split to change")
    if "status" in fields and body.status is None:
        raise HTTPException(422, "status: may not be null")
    ids = sorted(set(body.ids))
    current: dict[int, ImageStatus] = {}
    for chunk in _chunks(ids):
        current.update(db.execute(
            select(Image.id, Image.status).where(Image.project_id == project_id, Image.id.in_(chunk))).all())
    missing = [i for i in ids if i not in current]
    if missing:
        raise HTTPException(404, f"images not found in project {project_id}: {missing[:10]}")
    values: dict = {}
    if "split" in fields:
        values["split"] = body.split
    if body.status is not None:
        for i in ids:
            _check_transition(i, current[i], body.status)
        values.update(status=body.status, reviewed_by_id=user.id, reviewed_at=datetime.now(timezone.utc))
    for chunk in _chunks(ids):
        cond = [Image.id.in_(chunk)]
        if body.status is not None:  # only rows still in the state checked above
            cond.append(Image.status != body.status)
        res = db.execute(update(Image).where(*cond).values(**values))
        if body.status is not None and res.rowcount != len(chunk):
            db.rollback()
            raise HTTPException(409, "some images changed status meanwhile; nothing was changed, reload and retry")
    return BulkResult(updated=len(ids))
