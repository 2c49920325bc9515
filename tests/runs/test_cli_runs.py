"""`studio train|evaluate|predict CONFIG --project P`: validation errors exit 1 with the field, a
YAML config runs in-process with --inline and prints the before / after table."""
from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import cli_runner
from tests.runs.conftest import QA_FAMILIES, STK, config


@pytest.fixture
def cli(tmp_path, monkeypatch):
    from backend.config import get_settings

    yield cli_runner(monkeypatch, tmp_path / "data", f"sqlite:///{tmp_path / 'studio.db'}")
    get_settings.cache_clear()


def test_cli_train_inline_and_errors(cli, tmp_path, tiny_paligemma):
    assert cli("import", "--project", "karts", "--format", "supertuxkart", "--create", STK).exit_code == 0
    assert cli("split", "--project", "karts", "--mode", "image", "--ratios", "train=0.67,test=0.33").exit_code == 0
    assert cli("qa", "generate", "--project", "karts", "--families", ",".join(QA_FAMILIES)).exit_code == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(config(tiny_paligemma, rank=0, leak_key="file")))
    r = cli("train", bad, "--project", "karts")
    assert r.exit_code == 1 and "config.rank" in r.output
    good = tmp_path / "run.yaml"
    good.write_text(yaml.safe_dump(config(tiny_paligemma, max_steps=2, leak_key="file")))
    r = cli("train", good, "--project", "karts", "--inline")
    assert r.exit_code == 0, r.output
    assert "AP50" in r.output and "VQA accuracy" in r.output and "succeeded" in r.output
    r = cli("train", good, "--project", "karts")  # queued for a worker; returns at once
    assert r.exit_code == 0 and "queued" in r.output
