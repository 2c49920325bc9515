"""Fixtures of the run tests: a small real project (SuperTuxKart frames of two tracks, split by
track, QA pairs generated), the cached tiny PaliGemma, and a run config that trains in seconds."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from backend.db import session_scope
from backend.importer import import_source, source_from_path
from backend.qa import store as qa_store
from backend.models import Image
from backend.storage import ImageStore
from tests.worker.conftest import tiny_model_path

torch.set_num_threads(1)
STK = Path(__file__).resolve().parents[1] / "data" / "stk"
QA_FAMILIES = ["detection", "counting", "spatial", "identity"]


@pytest.fixture(scope="session")
def tiny_paligemma() -> Path:
    return tiny_model_path("paligemma")


def make_project(client, settings, sessionmaker, name: str = "karts") -> int:
    """Three SuperTuxKart frames: cornfield_crossing 17d01 (4 karts) is the held-out test image, the
    other two train (hacienda's has no kart: a detection negative). The split is by frame, so the
    run config's leak_key is "frame" (by "track" it leaks: the bad-input test uses that)."""
    pid = client.post("/api/projects", json={"name": name}).json()["id"]
    with session_scope(sessionmaker) as s:
        import_source(s, ImageStore(settings.data_dir, settings.thumbnail_size), settings, pid, "supertuxkart",
                      source_from_path(STK, settings))
    with session_scope(sessionmaker) as s:
        for im in s.scalars(select(Image).where(Image.project_id == pid)):
            im.split = "test" if im.file_name.startswith("cornfield_crossing/17d01") else "train"
        qa_store.generate(s, pid, QA_FAMILIES, seed=0)
    return pid


@pytest.fixture
def project(client, app) -> int:
    return make_project(client, app.state.settings, app.state.sessionmaker)


def config(model: Path, **kw) -> dict:
    return {"family": "paligemma", "base_model": str(model), "max_steps": 4, "batch_size": 2, "leak_key": "frame",
            "max_new_tokens": 12, "eval_qa_per_image": 3, "device": "cpu", "learning_rate": 1e-3, **kw}


def wait_for(fn, timeout: float = 60, every: float = 0.2, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
