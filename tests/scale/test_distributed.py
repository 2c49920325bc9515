"""Several devices for one run (worker/distributed.py), on CPU with gloo and 2 processes started by
torchrun: the losses equal one process's with the same global batch, a cancel stops both ranks at
the same step with a checkpoint, and a resume from it continues exactly as the straight run."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.worker.conftest import tiny_model_path
from worker.distributed import train_distributed
from worker.synth import shape_samples
from worker.train_config import TrainConfig
from worker.training import train

torch.set_num_threads(1)


def cfg(out: Path, **kw) -> TrainConfig:
    base = dict(family="paligemma", base_model=str(tiny_model_path("paligemma")), output_dir=str(out), max_steps=5,
                batch_size=4, learning_rate=5e-3, rank=4, alpha=8, dropout=0.0, seed=3, device="cpu")
    return TrainConfig(**{**base, **kw})


@pytest.mark.slow
def test_two_processes_equal_one_and_cancel_then_resume_exactly(tmp_path):
    data = shape_samples(10, seed=0, size=(56, 56), n_objects=(1, 3), min_frac=0.15, max_frac=0.35)
    one = train(cfg(tmp_path / "one"), data, progress=lambda p: None)
    # 2 ranks; cancel once step 2 is reported: both stop at the same next step (torchrun exits
    # cleanly) and rank 0 checkpoints it in the run's folder
    steps = []
    cut = train_distributed(cfg(tmp_path / "two", checkpoint_every=2), data, devices=2,
                            progress=lambda p: steps.append(p.step), should_cancel=lambda: bool(steps) and steps[-1] >= 2,
                            poll_s=0.01)
    assert cut.cancelled and 2 <= cut.steps < 5 and cut.checkpoint_dir == tmp_path / "two" / "checkpoints" / f"step-{cut.steps:07d}"
    assert steps == list(range(1, cut.steps + 1))  # one progress stream, from rank 0
    assert cut.losses == pytest.approx(one.losses[:cut.steps], abs=1e-4)  # = one process, same global batch
    seen = []
    resumed = train_distributed(cfg(tmp_path / "two", checkpoint_every=2), data, devices=2, progress=seen.append,
                                resume_from=tmp_path / "two")
    assert resumed.steps == 5 and not resumed.cancelled
    assert [p.step for p in seen] == list(range(cut.steps + 1, 6))
    assert resumed.losses[:cut.steps] == cut.losses
    assert resumed.losses == pytest.approx(one.losses, abs=1e-4)  # the resume continued exactly
    assert (tmp_path / "two" / "adapter" / "adapter_model.safetensors").is_file()


def test_devices_is_a_checked_run_setting():
    from backend.errors import InvalidInput
    from backend.runs import parse_config

    ok = parse_config("train", {"family": "paligemma", "base_model": "org/model", "devices": 2})
    assert ok.devices == 2 and "devices" not in ok.train_dict("out")  # run level: not a training knob
    for bad in (0, -1, "two"):
        with pytest.raises(InvalidInput, match="config.devices"):
            parse_config("train", {"family": "paligemma", "base_model": "org/model", "devices": bad})
