"""Try it: a finished train run's base and adapter answer one prompt on a project image or an
uploaded one (the job queued by the API, run by the worker's function), and bad requests get a 4xx
naming what is wrong."""
from __future__ import annotations

import io

import torch
from PIL import Image as PILImage
from sqlalchemy import select

from backend.db import session_scope
from backend.models import Image
from tests.runs.conftest import config, make_project, tiny_paligemma  # noqa: F401 - a fixture
from worker.runner import execute
from worker.tryit import run_try

torch.set_num_threads(1)


def _png() -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (64, 48), (20, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


def test_try_it_answers_with_base_and_adapter_and_refuses_bad_requests(client, app, tiny_paligemma):
    settings = app.state.settings
    pid = make_project(client, settings, app.state.sessionmaker)
    rid = client.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": config(tiny_paligemma, max_steps=2)}).json()["id"]
    # not finished yet: nothing to try
    with session_scope(app.state.sessionmaker) as s:
        iid = s.scalar(select(Image.id).where(Image.project_id == pid).order_by(Image.id))
    r = client.post(f"/api/runs/{rid}/try", data={"image_id": iid})
    assert r.status_code == 409 and "only a succeeded train run" in r.json()["detail"]
    assert execute(rid, settings) == "succeeded"

    r = client.post(f"/api/runs/{rid}/try", data={"image_id": iid, "mode": "detect"})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] == "queued" and job["run_id"] == rid and "image" not in job  # no server path shown
    assert run_try(settings, job["id"]) == "succeeded"
    assert run_try(settings, job["id"]) == "skipped"  # a duplicate message does nothing
    done = client.get(f"/api/tryit/{job['id']}").json()
    assert done["state"] == "succeeded", done.get("error")
    for side in ("base", "adapter"):
        assert isinstance(done[side]["text"], str) and isinstance(done[side]["boxes"], list)
    assert done["prompt_used"].startswith("detect")

    # an uploaded image and a question
    r = client.post(f"/api/runs/{rid}/try", data={"mode": "ask", "prompt": "How many karts are in the image?"},
                    files={"file": ("frame.png", _png(), "image/png")})
    assert r.status_code == 202, r.text
    assert run_try(settings, r.json()["id"]) == "succeeded"
    done = client.get(f"/api/tryit/{r.json()['id']}").json()
    assert done["width"] == 64 and done["adapter"]["text"] is not None

    # bad requests name the problem
    other = make_project(client, settings, app.state.sessionmaker, name="other")
    own = iid
    with session_scope(app.state.sessionmaker) as s:
        foreign = s.scalar(select(Image.id).where(Image.project_id == other))
    cases = [
        ({}, None, "image_id"),  # neither image nor file
        ({"image_id": own}, ("f.png", _png(), "image/png"), "image_id"),  # both
        ({"image_id": foreign}, None, "not an image of this run's project"),
        ({"image_id": own, "mode": "caption"}, None, "mode"),
        ({"image_id": own, "mode": "ask", "prompt": "  "}, None, "prompt"),
        ({}, ("notes.png", b"not an image", "image/png"), "not a readable image"),
    ]
    for data, file, needle in cases:
        r = client.post(f"/api/runs/{rid}/try", data=data, files={"file": file} if file else None)
        assert r.status_code == 422, (data, r.text)
        assert needle in r.json()["detail"], r.text
    assert client.get("/api/tryit/nope").status_code == 404
    assert client.post("/api/runs/999999/try", data={"image_id": own}).status_code == 404
