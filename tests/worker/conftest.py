"""Tiny models of every family, built once and cached on disk keyed by the builder's source."""
from __future__ import annotations

import hashlib
import inspect
import shutil
from pathlib import Path

import pytest
import torch

from worker import tiny
from worker.families import qwen2_vl

ROOT = Path(__file__).resolve().parents[2]
torch.set_num_threads(1)


def tiny_model_path(family: str) -> Path:
    """Build (or reuse) the tiny model of `family` under <repo>/.cache/tiny/<family>-<hash>/."""
    # the builder's source and what it builds with (the Qwen image-only processor class)
    src = (inspect.getsource(tiny) + inspect.getsource(qwen2_vl)).encode()
    key = hashlib.sha256(src).hexdigest()[:12]
    out = ROOT / ".cache" / "tiny" / f"{family}-{key}"
    if not (out / "config.json").is_file():
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tiny.build_tiny(family, tmp)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)  # atomic: a half-built folder is never picked up
    return out


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, Path]:
    return {name: tiny_model_path(name) for name in tiny.BUILDERS}
