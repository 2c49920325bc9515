"""Export a project (optionally one split) as a zip of images + annotations in a writable format."""
from __future__ import annotations

import csv
import io
import posixpath
import zipfile
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend import review_status
from backend.formats import get_format
from backend.formats.base import Dataset, ParsedBox, ParsedImage
from backend.models import Box, Image, Label
from backend.storage import IMAGE_SUFFIXES, ImageStore


# file_name,status per image, beside the format's own files (CSV: no importer mistakes it for annotations)
STATUS_FILE = "image_status.csv"


def project_dataset(session: Session, store: ImageStore, project_id: int, split: str | None = None,
                    image_status: str | None = None, statuses: dict[str, str] | None = None) -> Dataset:
    """The project's images (those whose review status passes `image_status`, default not rejected)
    and boxes in the neutral form (image bytes read from the store on demand); `statuses` gets each
    image's status by file name."""
    ok = review_status.condition(image_status)
    labels = dict(session.execute(
        select(Label.id, Label.name).where(Label.project_id == project_id).order_by(Label.id)).all())
    q = select(Image).where(Image.project_id == project_id, ok).order_by(Image.id)
    bq = select(Box.image_id, Box.label_id, Box.x1, Box.y1, Box.x2, Box.y2, Box.attributes).join(
        Image, Image.id == Box.image_id).where(Image.project_id == project_id, ok).order_by(Box.id)
    if split is not None:
        q, bq = q.where(Image.split == split), bq.where(Image.split == split)
    images: dict[int, ParsedImage] = {}
    for im in session.scalars(q):
        path = store.path(im.sha256, im.ext)
        images[im.id] = ParsedImage(file_name=im.file_name, read=path.read_bytes, width=im.width,
                                    height=im.height, sha256=im.sha256, ext=im.ext, meta=dict(im.meta or {}),
                                    split=im.split)
        if statuses is not None:
            statuses[im.file_name] = im.status.value
    for iid, lid, x1, y1, x2, y2, attrs in session.execute(bq):
        images[iid].boxes.append(ParsedBox(labels[lid], x1, y1, x2, y2, dict(attrs or {})))
    return Dataset(images=list(images.values()), labels=list(labels.values()))


def export_zip(session: Session, store: ImageStore, project_id: int, fmt_name: str, out: BinaryIO,
               split: str | None = None, family: str | None = None, image_status: str | None = None) -> int:
    """Write the zip to `out` (with STATUS_FILE); return the number of images exported. `family`: the
    model family of an instruction format (msswift, llamafactory); `image_status`: which review
    statuses go in (default: all but rejected)."""
    fmt = get_format(fmt_name, writable=True).configured(family)
    statuses: dict[str, str] = {}
    ds = project_dataset(session, store, project_id, split, image_status, statuses)
    with zipfile.ZipFile(out, "w") as zf:
        def put(name: str, data: bytes) -> None:
            # Images are already compressed: store them; deflate the annotation text.
            stored = posixpath.splitext(name)[1].lower() in IMAGE_SUFFIXES
            zf.writestr(name, data, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)

        fmt.write(ds, put)
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([("file_name", "status"), *sorted(statuses.items())])
        put(STATUS_FILE, text.getvalue().encode())
    return len(ds.images)
