"""The offline demo end to end: the shipped base (pre-trained on real frames of other tracks) ->
real-frame project split by track -> a train run through backend.runs.create_run and
worker.runner.execute -> the before/after table, visible through the runs API like any run.

The quick test runs every step on a reduced budget (a few steps, a handful of held-out images); the
slow one is the full demo and asserts the issue's targets on the held-out tracks."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from backend.catalog import DEMO_PREFIX, shipped_demo_card
from backend.config import Settings
from backend.demo import format_table, format_targets, run_demo, targets

torch.set_num_threads(1)
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
    res = run_demo(settings, run_overrides=QUICK_RUN, threads=1, log=lines.append)
    assert res.status == "succeeded", res.error
    # the base is the shipped model, copied under the data dir, and says what it was trained on
    model = Path(res.model_dir)
    card = shipped_demo_card()
    assert model == settings.data_dir / "models" / f"{DEMO_PREFIX}{card['sha256'][:12]}"
    assert json.loads((model / "studio_pretraining.json").read_text())["sha256"] == card["sha256"]
    assert any("never seen" in ln and "cornfield_crossing" in ln for ln in lines)
    metrics = {r["metric"] for r in res.table}
    assert {"AP50", "mAP", "VQA accuracy"} <= metrics
    assert any(m.startswith("VQA accuracy: ") for m in metrics)
    text = format_table(res)
    assert text.splitlines()[1].startswith("AP50")
    # every target is printed with its measured value and its bar
    shown = format_targets(res).splitlines()[1:]
    assert len(shown) == len(targets(res)) == 7 and all("met]" in ln for ln in shown)
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
    # a second demo in the same data dir reuses the copied model
    weights = sorted(Path(res.model_dir).glob("*.safetensors"))
    stamps = [w.stat().st_mtime_ns for w in weights]
    again = run_demo(settings, run_overrides=QUICK_RUN, threads=1, log=lines.append)
    assert again.model_dir == res.model_dir and weights
    assert [w.stat().st_mtime_ns for w in weights] == stamps  # the copied weights were not rewritten
    # per QA family accuracy, with the majority answer beside it
    majority = {r["metric"]: r["majority"] for r in res.table if r["metric"].startswith("VQA accuracy: ")}
    assert majority and set(majority) <= {"VQA accuracy: counting", "VQA accuracy: spatial"}
    assert None not in majority.values()
    # pool_base_boxes: the after boxes are the adapter's fused with the base's (the before phase's
    # boxes, the same model with the adapter off): every base box is in the pool, as it is or fused
    # into a box it overlaps; the adapter's own numbers stay beside the pooled ones
    assert view["config"]["pool_base_boxes"] is True
    # the base's boxes are the before phase's, not decoded a second time with the adapter off
    assert any("the before phase's boxes of the base on the 4 images" in ln for ln in view["log_tail"])
    alone = view["metrics"]["after"]["adapter_alone"]
    assert {"ap50", "map", "f1", "distinct_boxes"} <= set(alone)
    row = {r["metric"]: r for r in res.table}["AP50"]
    assert row["adapter_alone"] == alone["ap50"] and "adapter alone" in text
    before, after = _boxes(settings, res.run_id, "before"), _boxes(settings, res.run_id, "after")
    assert sum(map(len, before.values())) > 0  # the shipped base draws boxes: the check is not empty
    for image_id, boxes in before.items():
        for b in boxes:
            kept = after.get(image_id, [])
            assert any(k[:4] == b[:4] or _iou(k, b) >= 0.5 for k in kept), (image_id, b, kept)


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
        r = runner.invoke(app, ["demo", "--data", str(tmp_path / "synth"), "--format", "supertuxkart",
                                "--threads", "1"])
        assert r.exit_code == 0, r.output
        assert "AP50" in r.output and "pre-trained on real SuperTuxKart frames" in r.output and ": succeeded" in r.output
    finally:
        get_settings.cache_clear()


def _boxes(settings: Settings, run_id: int, phase: str) -> dict[int, list[tuple]]:
    from sqlalchemy import create_engine, text as sql

    eng = create_engine(settings.resolved_database_url())
    with eng.connect() as c:
        rows = c.execute(sql("SELECT image_id, x1, y1, x2, y2, score FROM predictions WHERE run_id = :r AND "
                             "phase = :p AND task = 'detect' AND x1 IS NOT NULL"), {"r": run_id, "p": phase}).all()
    eng.dispose()
    out: dict[int, list[tuple]] = {}
    for image_id, *box in rows:
        out.setdefault(image_id, []).append(tuple(box))
    return out


def _iou(a: tuple, b: tuple) -> float:
    from worker.metrics import iou_matrix

    return float(iou_matrix(np.array([a[:4]]), np.array([b[:4]]))[0, 0])


def _raw_texts(settings: Settings, run_id: int, phase: str) -> dict[int, str]:
    from sqlalchemy import create_engine, text as sql

    eng = create_engine(settings.resolved_database_url())
    with eng.connect() as c:
        rows = c.execute(sql("SELECT image_id, raw_text FROM predictions WHERE run_id = :r AND phase = :p "
                             "AND task = 'detect'"), {"r": run_id, "p": phase}).all()
    eng.dispose()
    return dict(rows)


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory):
    """The shipped base through the real importer, QA, runner and evaluation on 2 threads: LoRA
    fine-tuned on three tracks, evaluated on two others, none of them seen in pre-training."""
    tmp = tmp_path_factory.mktemp("full-demo")
    settings = _settings(tmp)
    t0 = time.perf_counter()
    res = run_demo(settings, threads=2, log=print)
    seconds = time.perf_counter() - t0
    print(format_table(res), res.seconds)
    print(f"full demo: {seconds:.0f} s (the issue's budget: 300 s on 2 threads)")
    return settings, res


# The targets (backend.demo.targets), every one asserted as written, nothing lowered.
TARGETS = ("AP50 vs the location prior", "AP50 vs the pretrained base", "distinct boxes", "centre r x",
           "centre r y", "counting vs the majority answer", "spatial vs the majority answer")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a hang guard, not a budget (the budget, 5 min on 2 threads, is printed)
def test_full_demo_sees_karts_on_tracks_it_has_never_seen(full_demo):
    settings, res = full_demo
    assert res.status == "succeeded", res.error
    assert Path(res.model_dir).name == f"{DEMO_PREFIX}{shipped_demo_card()['sha256'][:12]}"
    assert len(_raw_texts(settings, res.run_id, "before")) == 80  # every held-out frame was asked
    got = {t.name: t for t in targets(res)}
    assert set(got) == set(TARGETS)
    print(format_targets(res))
    # fine-tuning helps on tracks neither step saw; its boxes follow the karts (a fixed box scores
    # r ~0) and differ per frame; it counts and places karts better than always giving each
    # template's most common answer
    for name in TARGETS:
        assert got[name].met, got[name]
    # the fine-tuned boxes are pooled with the base's (pool_base_boxes); the adapter on its own still
    # beats the base, so the fine-tune adds, not only the pool
    ap50 = {r["metric"]: r for r in res.table}["AP50"]
    assert ap50["adapter_alone"] > ap50["pretrained"], ap50
