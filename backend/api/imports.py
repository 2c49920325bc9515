"""Import (all-or-nothing, with a report) and export (a zip) of a project's images and boxes."""
from __future__ import annotations

import os
import tempfile
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from backend import review_status
from backend.api.disposition import content_disposition
from backend.api.deps import Id, DB, CurrentUser, SettingsDep, Store, get_project
from backend.errors import TooLarge
from backend.exporter import export_zip
from backend.formats import get_format
from backend.importer import import_source, source_from_uploads
from backend.models import Role

router = APIRouter(tags=["imports"])


@router.post("/projects/{project_id}/imports")
def create_import(
    project_id: Id,
    db: DB,
    user: CurrentUser,
    store: Store,
    settings: SettingsDep,
    format: Annotated[str, Form(description="coco | yolo | voc | supertuxkart | detjson | hf_parquet | "
                                            "labelstudio | cvat | msswift | llamafactory")],
    files: Annotated[list[UploadFile], File(description="one zip, or several files named by relative path")],
) -> dict:
    get_project(db, user, project_id, Role.annotator)
    get_format(format)  # an unknown format fails before any file is read
    cap, total, uploads = settings.max_archive_bytes, 0, []
    for f in files:
        data = f.file.read(cap - total + 1)
        total += len(data)
        if total > cap:
            raise TooLarge(f"the upload is over the cap of {cap} bytes")
        uploads.append((f.filename or "upload", data))
    source = source_from_uploads(uploads, settings)
    return import_source(db, store, settings, project_id, format, source).as_dict()


@router.get("/projects/{project_id}/export")
def export_project(
    project_id: Id,
    db: DB,
    user: CurrentUser,
    store: Store,
    format: Annotated[str, Query(description="coco | yolo | voc | hf_parquet | labelstudio | cvat | msswift | "
                                             "llamafactory")] = "coco",
    split: Annotated[str | None, Query(max_length=32)] = None,
    family: Annotated[str | None, Query(max_length=32, description="msswift / llamafactory: the model family "
                                        "whose box syntax the answers use (default qwen2_vl)")] = None,
    image_status: Annotated[str, Query(description="not_rejected (default) | accepted | all | one status")] = "not_rejected",
) -> FileResponse:
    project = get_project(db, user, project_id, Role.viewer)
    get_format(format, writable=True).configured(family)
    review_status.statuses(image_status)  # 422 before any work
    # A temporary file, not memory: an export holds every image of the project.
    fd, tmp = tempfile.mkstemp(suffix=".zip")
    try:
        with os.fdopen(fd, "wb") as out:
            export_zip(db, store, project_id, format, out, split, family, image_status)
    except BaseException:
        os.unlink(tmp)
        raise
    name = f"project-{project.id}-{format}{'-' + family if family else ''}{'-' + split if split else ''}.zip"
    return FileResponse(tmp, media_type="application/zip", headers={"Content-Disposition": content_disposition(name)},
                        background=BackgroundTask(os.unlink, tmp))
