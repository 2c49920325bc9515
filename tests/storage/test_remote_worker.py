"""A worker on "another machine": its data directory shares nothing with the API's; it reaches the
run through the database and the broker, the images and run outputs through S3 (moto's server).
The run trains (on 2 processes: `devices: 2`), checkpoints and stores its adapter in the bucket;
the API serves the adapter zip."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from backend.config import Settings
from backend.db import session_scope
from backend.importer import import_source, source_from_path
from backend.models import Image
from backend.qa import store as qa_store
from backend.storage import image_store
from tests.runs.conftest import QA_FAMILIES, STK, config, tiny_paligemma, wait_for  # noqa: F401 (fixture)
from tests.runs.test_worker import FAST, done, launch, studio
from tests.storage.conftest import objects

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_worker_with_its_own_data_dir_trains_through_s3(tmp_path, bucket, s3_server, tiny_paligemma):
    common = dict(database_url=f"sqlite:///{tmp_path / 'studio.db'}", storage_url=f"s3://{bucket}/studio",
                  celery_broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
                  queue_prefix=f"t{uuid.uuid4().hex[:6]}-", **FAST)
    api = Settings(data_dir=tmp_path / "api", **common)
    remote = tmp_path / "worker-machine"
    env = {**os.environ, **s3_server, "STUDIO_DATA_DIR": str(remote), "DATABASE_URL": common["database_url"],
           "CELERY_BROKER_URL": common["celery_broker_url"], "STUDIO_STORAGE_URL": common["storage_url"],
           "STUDIO_QUEUE_PREFIX": common["queue_prefix"], "STUDIO_TORCH_THREADS": "1"}
    env.update({f"STUDIO_{k.upper()}": str(v) for k, v in FAST.items()})
    with studio(api) as (app, client):
        pid = client.post("/api/projects", json={"name": "karts"}).json()["id"]
        with session_scope(app.state.sessionmaker) as s:
            import_source(s, image_store(api), api, pid, "supertuxkart", source_from_path(STK, api))
        with session_scope(app.state.sessionmaker) as s:
            for im in s.scalars(select(Image).where(Image.project_id == pid)):
                im.split = "test" if im.file_name.startswith("cornfield_crossing/17d01") else "train"
            qa_store.generate(s, pid, QA_FAMILIES, seed=0)
        # devices=2: the Celery task trains with DDP over 2 processes (gloo on CPU) on that machine
        rid = launch(app, pid, **config(tiny_paligemma, checkpoint_every=2, devices=2))
        log = tmp_path / "worker.log"
        with open(log, "ab") as out:
            p = subprocess.Popen([sys.executable, "-m", "backend.cli", "worker", "--queues", "gpu"], env=env, cwd=ROOT,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            v = wait_for(lambda: done(client, rid), 240, 0.5, "the run to end")
        finally:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        assert v["status"] == "succeeded", (v["error"], log.read_text()[-3000:])
        assert [h["step"] for h in v["loss_history"]] == [1, 2, 3, 4]  # one loss history (rank 0's)
        keys = objects(bucket, "studio/")
        assert any(k.startswith(f"studio/runs/{rid}/adapter/") for k in keys), sorted(keys)
        assert any(k.startswith(f"studio/runs/{rid}/checkpoints/step-") and k.endswith("trainer_state.pt") for k in keys)
        # the worker read the images from the bucket (its cache), the API never saw the run's folder
        assert len(list((remote / "cache" / "images").rglob("*.*"))) == 3
        assert not (api.data_dir / "runs").exists()
        r = client.get(f"/api/runs/{rid}/adapter")
        assert r.status_code == 200, r.text
        names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
        assert "adapter_config.json" in names
        assert (api.data_dir / "cache" / "runs" / str(rid) / "adapter" / "adapter_config.json").is_file()
