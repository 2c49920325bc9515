"""The model catalogue (backend/catalog.py): what a run can start from, and building the demo model
(a job on the worker queue, like a run). Reading needs a signed-in user; building needs an admin."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from backend import catalog
from backend.api.deps import CurrentUser, SettingsDep

router = APIRouter(tags=["models"])


class BuildIn(BaseModel):
    steps: int | None = Field(None, ge=1, le=100_000, description="pre-training steps (default: the tuned recipe)")


@router.get("/models")
def list_models(user: CurrentUser, settings: SettingsDep) -> dict:
    """The demo model (ready or being prepared), local save_pretrained folders, and hub presets."""
    return {"items": catalog.catalogue(settings), "models_dir": str(catalog.models_dir(settings).resolve())}


@router.post("/models/demo/build", status_code=status.HTTP_202_ACCEPTED)
def build_demo(user: CurrentUser, settings: SettingsDep, body: BuildIn | None = None) -> dict:
    """Queue the demo model's pre-training on the gpu queue (a build already under way is returned)."""
    if not user.is_admin:
        raise HTTPException(403, "building a model needs an admin")
    return catalog.queue_demo_build(settings, {"steps": body.steps} if body and body.steps else None)


@router.get("/models/jobs/{name}")
def model_job(user: CurrentUser, settings: SettingsDep, name: str) -> dict:
    """A build job's state: queued / running / succeeded / failed, progress, ETA, log."""
    job = catalog.read_job(settings, name) if name.isidentifier() else None
    if job is None:
        raise HTTPException(404, f"no model build job {name!r}")
    return job
