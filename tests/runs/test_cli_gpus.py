"""`studio worker --gpus 0,1`: one worker process per GPU, each seeing only its own."""
from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from backend.cli import gpu_worker_specs, worker_cmd


def test_one_process_per_gpu_each_sees_only_its_own():
    specs = gpu_worker_specs(["0", "3"], "gpu", "info")
    assert len(specs) == 2
    for (argv, env), gpu in zip(specs, ["0", "3"]):
        assert "--gpus" not in argv and argv[argv.index("--concurrency") + 1] == "1"  # no recursion, one run each
        # what the child process really sees in its environment
        out = subprocess.run([sys.executable, "-c", "import os; print(os.environ['CUDA_VISIBLE_DEVICES'], "
                              "os.environ['STUDIO_DEVICE'], os.environ['STUDIO_TORCH_THREADS'])"],
                             env=env, capture_output=True, text=True, check=True).stdout.split()
        assert out[0] == gpu and out[1] == "cuda" and int(out[2]) >= 1


@pytest.mark.parametrize("bad", ["0,0", "a,1", ","])
def test_bad_gpu_lists_are_refused(bad):
    with pytest.raises(typer.BadParameter, match="--gpus|GPU indices"):
        worker_cmd(queues="gpu", concurrency=1, loglevel="info", gpus=bad)
