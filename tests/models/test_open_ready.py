"""`studio up` on a fresh data dir: the demo project is made at once (images, split by track, QA)
and the demo model's build queued; a studio already in use is left alone. `--demo` launches the
demo's train run once the demo model is ready."""
from __future__ import annotations

import json
import shutil
import threading

from sqlalchemy import func, select

from backend import catalog
from backend.config import Settings
from backend.db import make_engine, make_sessionmaker, migrate
from backend.demo import DEMO_PROJECT, RUN_CONFIG, launch_when_ready, open_ready
from backend.models import Image, Project, QAPair, Run
from tests.runs.conftest import tiny_paligemma  # noqa: F401 - a fixture


def _settings(tmp_path) -> Settings:
    s = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'studio.db'}",
                 queue_prefix="t-open-ready-")
    s.data_dir.mkdir(parents=True)
    migrate(s.resolved_database_url())
    from backend.auth import bootstrap_admin
    from backend.db import session_scope

    eng = make_engine(s.resolved_database_url())
    with session_scope(make_sessionmaker(eng)) as ses:
        bootstrap_admin(ses, s.data_dir)
    eng.dispose()
    return s


def _count(settings, q):
    eng = make_engine(settings.resolved_database_url())
    try:
        with make_sessionmaker(eng)() as s:
            return s.scalar(q)
    finally:
        eng.dispose()


def test_fresh_studio_opens_on_the_demo_project_with_the_shipped_model_ready(tmp_path):
    settings = _settings(tmp_path)
    lines: list[str] = []
    pid = open_ready(settings, log=lines.append)
    assert _count(settings, select(Project.name).where(Project.id == pid)) == DEMO_PROJECT
    demo = catalog.catalogue(settings)[0]
    assert demo["status"] == "ready" and demo["job"] is None  # nothing to build: the weights ship
    assert not any("build queued" in ln for ln in lines)


def test_without_shipped_weights_the_model_build_is_queued(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "DEMO_SHIPPED", tmp_path / "no-shipped-weights")
    settings = _settings(tmp_path)
    lines: list[str] = []
    pid = open_ready(settings, log=lines.append)
    assert pid is not None
    assert _count(settings, select(Project.name).where(Project.id == pid)) == DEMO_PROJECT
    assert _count(settings, select(func.count()).select_from(Image).where(Image.project_id == pid)) == 200
    assert _count(settings, select(func.count()).select_from(Image).where(Image.split == "test")) == 80  # 2 tracks
    assert _count(settings, select(func.count()).select_from(QAPair).where(QAPair.project_id == pid)) > 0
    demo = catalog.catalogue(settings)[0]
    assert demo["status"] == "building" and demo["job"]["state"] == "queued"
    assert any("build queued" in ln for ln in lines)
    # a second `up` on the same data dir adds nothing
    assert open_ready(settings, log=lines.append) is None
    assert _count(settings, select(func.count()).select_from(Project)) == 1


def test_demo_flag_launches_the_train_run_when_the_model_is_ready(tmp_path, tiny_paligemma, monkeypatch):
    monkeypatch.setattr(catalog, "DEMO_SHIPPED", tmp_path / "no-shipped-weights")  # the model is built, not shipped
    settings = _settings(tmp_path)
    pid = open_ready(settings, log=lambda _m: None)
    stop = threading.Event()
    out: list = []
    t = threading.Thread(target=lambda: out.append(launch_when_ready(settings, pid, poll=0.2, log=lambda _m: None,
                                                                      stop=stop)))
    t.start()
    t.join(1.0)
    assert t.is_alive() and _count(settings, select(func.count()).select_from(Run)) == 0  # waits for the model
    # the model becomes ready (as a finished build leaves it)
    dest = settings.data_dir / "models" / f"{catalog.DEMO_PREFIX}test"
    shutil.copytree(tiny_paligemma, dest)
    (dest / "studio_pretraining.json").write_text(json.dumps({"data": "SYNTHETIC", "recipe": {"steps": 1,
                                                                                             "loc_sigma": 3.0}}))
    catalog.write_job(settings, catalog.DEMO_JOB, state="succeeded", path=str(dest))
    t.join(20)
    assert not t.is_alive() and out[0] is not None
    cfg = _count(settings, select(Run.config).where(Run.id == out[0]))
    assert cfg["base_model"] == str(dest.resolve()) and cfg["leak_key"] == "track" and cfg["max_steps"] == RUN_CONFIG["max_steps"]
    # fine-tuned with the order and loss this base was pre-trained with (its card), not the default recipe's
    assert cfg["loc_sigma"] == 3.0 != RUN_CONFIG["loc_sigma"] and cfg["object_order"] == "largest_first"
