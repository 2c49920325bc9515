"""All-or-nothing import of a parsed dataset into a project, and the sources it reads from.

Order: parse and check everything (every image decoded against the settings caps, every box and
label name checked, file names free in the project) -> write the new image files to the store ->
ONE transaction with bulk inserts (labels, images, boxes). If the transaction fails, the files
this import newly wrote are removed again, so a failed import leaves the database and the store
as they were. Nothing is written before the last check has passed.

Status: an image that comes with at least one box is `in_review` (someone has annotated it, a
person should confirm it in the studio); an image without boxes is `unlabeled`. Boxes get
source `import` and keep the format's attributes.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.db import bulk_insert
from backend.errors import Conflict, InvalidInput
from backend.formats import get_format
from backend.formats.base import Dataset, DirSource, ImageCtx, MemorySource, Source
from backend.models import Box, BoxSource, Image, ImageStatus, Label, utcnow
from backend.storage import CheckedImage, ImageStore, read_zip, safe_member_name

PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
           "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#800000", "#aaffc3", "#000075"]
MAX_FILE_NAME = 512  # models.Image.file_name
_CHUNK = 500  # IN (...) lists stay far below SQLite's parameter limit


@dataclass
class ImportReport:
    format: str
    images_read: int = 0
    images_added: int = 0
    boxes_added: int = 0
    labels_created: list[str] = field(default_factory=list)
    clipped: int = 0
    warnings: list[str] = field(default_factory=list)
    labels_matched: list[str] = field(default_factory=list)  # the file's labels the project had already
    boxes_per_label: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- sources

def source_from_path(path: Path, settings: Settings) -> Source:
    """A directory, a zip file, or one annotation file (read with the files of its folder)."""
    path = Path(path)
    if path.is_dir():
        return DirSource(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file or directory")
    if path.suffix.lower() == ".zip":
        return MemorySource(read_zip(path.read_bytes(), max_members=settings.max_archive_members,
                                     max_total_bytes=settings.max_archive_bytes))
    return DirSource(path.parent, focus=path.name)


def source_from_uploads(files: list[tuple[str, bytes]], settings: Settings) -> Source:
    """Uploaded files with their relative names; a zip among them is unpacked at the root."""
    out: dict[str, bytes] = {}
    for name, data in files:
        if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
            members = read_zip(data, max_members=settings.max_archive_members,
                               max_total_bytes=settings.max_archive_bytes)
        else:
            members = {safe_member_name(name or "upload"): data}
        for n, b in members.items():
            if n in out:
                raise InvalidInput(f"{n}: uploaded twice")
            out[n] = b
    if not out:
        raise InvalidInput("no files uploaded")
    return MemorySource(out)


# ---------------------------------------------------------------- import

def parse(fmt_name: str, source: Source, settings: Settings,
          progress: Callable[[int], None] | None = None) -> Dataset:
    ctx = ImageCtx(source, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels,
                   progress=progress, max_decoded_bytes=settings.max_archive_bytes)
    try:
        ds = get_format(fmt_name).read(source, ctx)
        if not ds.images:
            raise InvalidInput(f"{fmt_name} import: no images found")
    except InvalidInput as e:
        if links := source.skipped_links:  # a folder assembled from links finds nothing: say why
            raise InvalidInput(f"{e.message}; {len(links)} symbolic link{'s' * (len(links) != 1)} not followed "
                               f"(folder links, and file links out of the folder, are skipped: copy the files in): "
                               + ", ".join(links[:5]) + (", ..." if len(links) > 5 else "")) from None
        raise
    seen: dict[str, int] = {}
    for im in ds.images:
        if len(im.file_name) > MAX_FILE_NAME:
            raise InvalidInput(f"{im.file_name[:80]}...: file name over {MAX_FILE_NAME} characters")
        seen[im.file_name] = seen.get(im.file_name, 0) + 1
    dups = [n for n, c in seen.items() if c > 1]
    if dups:
        raise InvalidInput(f"the import names these images more than once: {', '.join(dups[:10])}")
    return ds


def commit_dataset(session: Session, store: ImageStore, project_id: int, ds: Dataset, fmt_name: str,
                   progress: Callable[[int], None] | None = None) -> ImportReport:
    names = [im.file_name for im in ds.images]
    taken: list[str] = []
    for i in range(0, len(names), _CHUNK):
        taken += session.scalars(select(Image.file_name).where(
            Image.project_id == project_id, Image.file_name.in_(names[i:i + _CHUNK]))).all()
    if taken:
        more = f" and {len(taken) - 10} more" if len(taken) > 10 else ""
        raise Conflict(f"{len(taken)} image(s) already in the project: {', '.join(sorted(taken)[:10])}{more}")

    existing = dict(session.execute(select(Label.name, Label.id).where(Label.project_id == project_id)).all())
    new_labels = [n for n in ds.all_labels() if n not in existing]
    matched = [n for n in ds.all_labels() if n in existing]

    written: list[tuple[str, str]] = []
    try:
        for im in ds.images:
            if store.has(im.sha256, im.ext):  # content-addressed: these bytes are stored already
                if progress:
                    progress(1)
                continue
            data = im.read()
            if hashlib.sha256(data).hexdigest() != im.sha256:
                raise Conflict(f"{im.file_name}: the file changed while it was being imported")
            if store.put(CheckedImage(data, im.sha256, im.ext, im.width, im.height)):
                written.append((im.sha256, im.ext))
            if progress:
                progress(1)
        # Core inserts on the tables (executemany / multi-row VALUES), not ORM objects: no per-row
        # round trip or identity-map work. Every column is given, so no per-row default runs.
        now = utcnow()
        if new_labels:
            n0 = len(existing)
            rows = [{"project_id": project_id, "name": n, "color": PALETTE[(n0 + i) % len(PALETTE)], "hotkey": None}
                    for i, n in enumerate(new_labels)]
            lt = Label.__table__
            for lid, name in session.execute(insert(lt).returning(lt.c.id, lt.c.name), rows).all():
                existing[name] = lid
        ids = _insert_images(session, project_id, ds, now)
        box_cols = ("image_id", "label_id", "x1", "y1", "x2", "y2", "source", "score", "attributes", "version",
                    "updated_by_id", "updated_at")
        now_db = _db_value(session, Box.__table__.c.updated_at, now)
        box_rows = [(iid, existing[b.label], b.x1, b.y1, b.x2, b.y2, BoxSource.import_.value, None,
                     json.dumps(b.attributes), 1, None, now_db)
                    for iid, im in zip(ids, ds.images) for b in im.boxes]
        bulk_insert(session, Box.__table__, box_cols, box_rows)
        session.commit()
    except BaseException as e:
        session.rollback()
        for sha, ext in written:
            store.remove(sha, ext)
        dbapi_error = getattr(session.get_bind().dialect.dbapi, "IntegrityError", IntegrityError)
        if isinstance(e, (IntegrityError, dbapi_error)):  # e.g. a concurrent import took a name or an id
            raise Conflict(f"the import conflicts with rows written meanwhile: {getattr(e, 'orig', e)}") from None
        raise
    return ImportReport(format=fmt_name, images_read=len(ds.images), images_added=len(ids),
                        boxes_added=len(box_rows), labels_created=new_labels, clipped=ds.clipped,
                        warnings=ds.warnings, labels_matched=matched,
                        boxes_per_label=dict(sorted(Counter(b.label for im in ds.images for b in im.boxes).items())))


def _db_value(session: Session, column, value):
    """`value` as the driver gets it for `column` (e.g. SQLite's DateTime string), converted once."""
    proc = column.type.bind_processor(session.get_bind().dialect)
    return proc(value) if proc else value


def _insert_images(session: Session, project_id: int, ds: Dataset, now) -> list[int]:
    """Insert the images; return their ids in dataset order."""
    t = Image.__table__
    cols = ("project_id", "sha256", "file_name", "ext", "width", "height", "split", "meta", "status",
            "reviewed_by_id", "reviewed_at", "created_at")
    now_db = _db_value(session, t.c.created_at, now)
    rows = [(project_id, im.sha256, im.file_name, im.ext, im.width, im.height, im.split, json.dumps(im.meta),
             (ImageStatus.in_review if im.boxes else ImageStatus.unlabeled).value, None, None, now_db)
            for im in ds.images]
    if session.get_bind().dialect.name == "postgresql":
        # Take the ids from the sequence first, then COPY the rows with them.
        ids = list(session.scalars(text(
            "SELECT nextval(pg_get_serial_sequence('images', 'id')) FROM generate_series(1, :n)"), {"n": len(rows)}))
        bulk_insert(session, t, ("id",) + cols, [(i,) + r for i, r in zip(ids, rows)])
        return ids
    # SQLite has no sequence: take the ids after the current maximum. A concurrent writer that takes
    # one first makes our insert fail on the primary key: a clean rollback and a 409, never a mix.
    start = (session.scalar(text("SELECT max(id) FROM images")) or 0) + 1
    ids = list(range(start, start + len(rows)))
    bulk_insert(session, t, ("id",) + cols, [(i,) + r for i, r in zip(ids, rows)])
    return ids


def import_source(session: Session, store: ImageStore, settings: Settings, project_id: int, fmt_name: str,
                  source: Source, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Parse + validate `source` in format `fmt_name`, then commit it into the project atomically."""
    fmt_name = get_format(fmt_name).name
    ds = parse(fmt_name, source, settings, progress)
    return commit_dataset(session, store, project_id, ds, fmt_name, progress)


def image_count_hint(source: Source) -> int:
    """Images in the source: the progress bar's total (checked once, stored once: x2)."""
    return len(source.images())
