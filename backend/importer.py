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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.errors import Conflict, InvalidInput
from backend.formats import get_format
from backend.formats.base import Dataset, DirSource, ImageCtx, MemorySource, Source
from backend.models import Box, BoxSource, Image, ImageStatus, Label
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
                   progress=progress)
    ds = get_format(fmt_name).read(source, ctx)
    if not ds.images:
        raise InvalidInput(f"{fmt_name} import: no images found")
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

    written: list[tuple[str, str]] = []
    try:
        for im in ds.images:
            data = im.read()
            if hashlib.sha256(data).hexdigest() != im.sha256:
                raise Conflict(f"{im.file_name}: the file changed while it was being imported")
            if store.put(CheckedImage(data, im.sha256, im.ext, im.width, im.height)):
                written.append((im.sha256, im.ext))
            if progress:
                progress(1)
        if new_labels:
            n0 = len(existing)
            rows = [{"project_id": project_id, "name": n, "color": PALETTE[(n0 + i) % len(PALETTE)]}
                    for i, n in enumerate(new_labels)]
            for lid, name in session.execute(insert(Label).returning(Label.id, Label.name), rows).all():
                existing[name] = lid
        image_rows = [{
            "project_id": project_id, "sha256": im.sha256, "file_name": im.file_name, "ext": im.ext,
            "width": im.width, "height": im.height, "split": im.split, "meta": im.meta,
            "status": ImageStatus.in_review if im.boxes else ImageStatus.unlabeled,
        } for im in ds.images]
        ids = session.scalars(insert(Image).returning(Image.id, sort_by_parameter_order=True), image_rows).all()
        box_rows = [{
            "image_id": iid, "label_id": existing[b.label], "x1": b.x1, "y1": b.y1, "x2": b.x2, "y2": b.y2,
            "source": BoxSource.import_, "attributes": b.attributes,
        } for iid, im in zip(ids, ds.images) for b in im.boxes]
        if box_rows:
            session.execute(insert(Box), box_rows)
        session.commit()
    except BaseException as e:
        session.rollback()
        for sha, ext in written:
            store.remove(sha, ext)
        if isinstance(e, IntegrityError):  # a concurrent import took a name between check and insert
            raise Conflict(f"the import conflicts with rows written meanwhile: {e.orig}") from None
        raise
    return ImportReport(format=fmt_name, images_read=len(ds.images), images_added=len(ids),
                        boxes_added=len(box_rows), labels_created=new_labels, clipped=ds.clipped,
                        warnings=ds.warnings)


def import_source(session: Session, store: ImageStore, settings: Settings, project_id: int, fmt_name: str,
                  source: Source, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Parse + validate `source` in format `fmt_name`, then commit it into the project atomically."""
    fmt_name = get_format(fmt_name).name
    ds = parse(fmt_name, source, settings, progress)
    return commit_dataset(session, store, project_id, ds, fmt_name, progress)


def image_count_hint(source: Source) -> int:
    """Images in the source: the progress bar's total (checked once, stored once: x2)."""
    return len(source.images())
