"""Try it (backend/tryit.py): a project image or an uploaded one, a prompt, and the run's base and
adapter answers side by side (boxes in image pixels). Trying needs the annotator role."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile, status
from sqlalchemy import select

from backend import tryit
from backend.api.deps import DB, CurrentUser, Id, SettingsDep, Store, project_row
from backend.errors import InvalidInput
from backend.models import Image, Label, Role, Run
from backend.storage import check_image

router = APIRouter(tags=["try it"])


@router.post("/runs/{run_id}/try", status_code=status.HTTP_202_ACCEPTED)
async def try_run(db: DB, user: CurrentUser, settings: SettingsDep, store: Store, run_id: Id,
                  prompt: Annotated[str, Form()] = "", mode: Annotated[str, Form()] = "detect",
                  image_id: Annotated[Id | None, Form()] = None,
                  file: Annotated[UploadFile | None, File()] = None) -> dict:
    """Queue one answer of the base and one of the adapter (mode detect: boxes of the project's
    labels; ask: the prompt as a question). Give image_id (an image of the project) or a file."""
    run = project_row(db, user, Run, run_id, "run", Role.annotator)
    if (image_id is None) == (file is None):
        raise InvalidInput("image_id: give either image_id (an image of the project) or an uploaded file")
    if file is not None:
        checked = check_image(await file.read(settings.max_upload_bytes + 1), file.filename or "upload",
                              max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
        store.put(checked)
        path, w, h = store.path(checked.sha256, checked.ext), checked.width, checked.height
    else:
        im = db.get(Image, image_id)
        if im is None or im.project_id != run.project_id:
            raise InvalidInput(f"image_id: {image_id} is not an image of this run's project")
        path, w, h = store.path(im.sha256, im.ext), im.width, im.height
    classes = list(db.scalars(select(Label.name).where(Label.project_id == run.project_id).order_by(Label.id)))
    return tryit.queue(settings, run, image=path, image_id=image_id, width=w, height=h, prompt=prompt, mode=mode,
                       classes=classes)


@router.get("/tryit/{job_id}")
def try_result(db: DB, user: CurrentUser, settings: SettingsDep, job_id: str) -> dict:
    """The job: queued / running / succeeded (with base and adapter: text, boxes) / failed."""
    job = tryit.read(settings, job_id)
    if job is None:
        raise HTTPException(404, f"try-it job {job_id} not found")
    project_row(db, user, Run, job["run_id"], "run")  # members only; others get the run's 404
    return tryit.public(job)
