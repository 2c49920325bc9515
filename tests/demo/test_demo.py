"""The offline demo end to end: synthetic pre-training -> real-frame project split by track -> a
train run through backend.runs.create_run and worker.runner.execute -> the before/after table,
visible through the runs API like any run.

The quick test runs every step on a reduced budget (a few synthetic images and steps, a handful of
held-out images); the slow one is the full demo and checks the measured improvement."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from backend.config import Settings
from backend.demo import format_table, run_demo

torch.set_num_threads(1)
QUICK_RECIPE = dict(n_images=40, steps=6, batch_size=4)
QUICK_RUN = dict(max_steps=3, batch_size=2, max_eval_images=4, eval_qa_per_image=1, max_new_tokens=12)


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'studio.db'}")


def _api_run(settings: Settings, run_id: int) -> dict:
    from fastapi.testclient import TestClient

    from backend.auth import bootstrap_admin
    from backend.db import session_scope
    from backend.main import create_app

    app = create_app(settings)
    try:
        with session_scope(app.state.sessionmaker) as s:
            token = bootstrap_admin(s, settings.data_dir)
        with TestClient(app) as c:
            c.headers["Authorization"] = f"Bearer {token}"
            r = c.get(f"/api/runs/{run_id}")
            assert r.status_code == 200, r.text
            return r.json()
    finally:
        app.state.engine.dispose()


def test_demo_quick_end_to_end(tmp_path):
    settings = _settings(tmp_path)
    lines: list[str] = []
    res = run_demo(settings, recipe=QUICK_RECIPE, run_overrides=QUICK_RUN, threads=1, log=lines.append)
    assert res.status == "succeeded", res.error
    # the pre-trained model is a save_pretrained folder under the data dir, and says it is synthetic
    model = Path(res.model_dir)
    assert model.parent == settings.data_dir / "models" and (model / "config.json").is_file()
    assert "SYNTHETIC" in json.loads((model / "studio_pretraining.json").read_text())["data"]
    assert any("SYNTHETIC" in ln for ln in lines)
    metrics = {r["metric"] for r in res.table}
    assert {"AP50", "mAP", "VQA accuracy"} <= metrics
    assert any(m.startswith("VQA accuracy: ") for m in metrics)
    text = format_table(res)
    assert text.splitlines()[1].startswith("AP50")
    # the run is an ordinary run of the studio: the API shows it with both metric sets
    view = _api_run(settings, res.run_id)
    assert view["status"] == "succeeded" and view["project_id"] == res.project_id
    assert {"before", "after", "table"} <= set(view["metrics"])
    assert view["metrics"]["before"]["n_images"] == 4  # the held-out tracks, capped by max_eval_images
    assert view["config"]["base_model"] == res.model_dir
    # the held-out split is whole tracks: nothing of cornfield_crossing / sandtrack was trained on
    from sqlalchemy import create_engine, text as sql

    eng = create_engine(settings.resolved_database_url())
    with eng.connect() as c:
        rows = c.execute(sql("SELECT split, meta FROM images WHERE project_id = :p"), {"p": res.project_id}).all()
    eng.dispose()
    tracks = {}
    for split, meta in rows:
        meta = json.loads(meta) if isinstance(meta, str) else meta
        tracks.setdefault(meta["track"], set()).add(split)
    assert tracks["cornfield_crossing"] == {"test"} and tracks["sandtrack"] == {"test"}
    assert all(v == {"train"} for k, v in tracks.items() if k not in ("cornfield_crossing", "sandtrack"))
    # a second demo in the same data dir reuses the cached model (no second pre-training)
    weights = sorted(Path(res.model_dir).glob("*.safetensors"))
    stamps = [w.stat().st_mtime_ns for w in weights]
    lines.clear()
    again = run_demo(settings, recipe=QUICK_RECIPE, run_overrides=QUICK_RUN, threads=1, log=lines.append)
    assert again.model_dir == res.model_dir and weights
    assert [w.stat().st_mtime_ns for w in weights] == stamps  # the cached weights were not rewritten
    assert not any(line.startswith("pre-training") for line in lines)


def test_demo_on_a_synthetic_folder_via_cli(tmp_path, monkeypatch):
    """`studio datasets synth-karts` writes a folder the importer reads; `studio demo --data` runs
    on it (split by race: the synthetic frames have race ids but one track per theme)."""
    from backend.cli import app

    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    from backend.config import get_settings

    get_settings.cache_clear()
    try:
        runner = CliRunner()
        r = runner.invoke(app, ["datasets", "synth-karts", str(tmp_path / "synth"), "--n", "24", "--seed", "3"])
        assert r.exit_code == 0, r.output
        assert len(list((tmp_path / "synth").glob("*/*_info.json"))) == 24
        import backend.demo as demo

        monkeypatch.setattr(demo, "RUN_CONFIG", {**demo.RUN_CONFIG, **QUICK_RUN})
        monkeypatch.setattr(demo, "DEFAULT_RECIPE", QUICK_RECIPE)
        r = runner.invoke(app, ["demo", "--data", str(tmp_path / "synth"), "--format", "supertuxkart",
                                "--threads", "1"])
        assert r.exit_code == 0, r.output
        assert "AP50" in r.output and "SYNTHETIC" in r.output and ": succeeded" in r.output
    finally:
        get_settings.cache_clear()


def _raw_texts(settings: Settings, run_id: int, phase: str) -> dict[int, str]:
    from sqlalchemy import create_engine, text as sql

    eng = create_engine(settings.resolved_database_url())
    with eng.connect() as c:
        rows = c.execute(sql("SELECT image_id, raw_text FROM predictions WHERE run_id = :r AND phase = :p "
                             "AND task = 'detect'"), {"r": run_id, "p": phase}).all()
    eng.dispose()
    return dict(rows)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a hang guard, not a budget: 733 s on a quiet machine, more when it is shared
def test_full_demo_improves_on_held_out_tracks(tmp_path):
    """The full recipe on 2 threads: pre-training (uncached) + baseline + LoRA fine-tune + final
    evaluation within the issue's budget, with a measured gain on the held-out tracks."""
    settings = _settings(tmp_path)
    t0 = time.perf_counter()
    res = run_demo(settings, threads=2, log=print)
    seconds = time.perf_counter() - t0
    print(format_table(res), res.seconds)
    assert res.status == "succeeded", res.error
    rows = {r["metric"]: r for r in res.table}
    assert rows["AP50"]["finetuned"] > rows["AP50"]["pretrained"]
    assert rows["mAP"]["finetuned"] > rows["mAP"]["pretrained"]
    vqa = [r for m, r in rows.items() if m.startswith("VQA accuracy: ")]
    assert any(r["finetuned"] > r["pretrained"] for r in vqa)
    # The pretrained model looks at the image: on real frames it has never seen it answers with
    # boxes (no empty answers) that differ from frame to frame.
    before = _raw_texts(settings, res.run_id, "before")
    assert len(before) == 80 and all(before.values())
    assert len(set(before.values())) >= 40
    # The fine-tuned model does not answer one box everywhere either.
    assert len(set(_raw_texts(settings, res.run_id, "after").values())) >= 5
    # The reference a model has to beat to show it sees the karts; printed beside the table.
    assert 0 < res.prior["ap50"] < 1 and "location prior" in format_table(res)
    # The budget is 15 min; wall time is printed, not asserted (a shared CPU can stretch it).
    print(f"full demo: {seconds:.0f} s")
