"""Several devices for one run: data parallelism over N processes on one machine, through PyTorch's
own engine - `torch.distributed.run` (torchrun) starts the processes, DistributedDataParallel
all-reduces the gradients (NCCL on GPUs, gloo on CPU).

`train_distributed` has worker.training.train's signature plus `devices`: the Celery task's
process (worker.runner) calls it instead of `train` for a run with `devices: N > 1`. It writes the
job (config, samples, resume folder) to `<output_dir>/ddp/`, starts torchrun, and stays the one
voice of the run: rank 0 appends each step's Progress to a JSON-lines file that this process
forwards to `progress` (so the run row shows one progress and one loss history), a cancel is a
file rank 0 sees and all-reduces to every rank (so all stop at the same step), and rank 0 alone
writes the checkpoints and the adapter to the real output folder (the other ranks write theirs to
scratch folders), so resume works exactly as for one device.

Equal to one process with the same global batch: every global batch (worker.training's batching,
unchanged) is cut into N shards; each rank's loss is its token-loss sum over the global number of
answer tokens (all-reduced), times N because DDP averages gradients - so the summed gradient, and
the reported loss, are those of the whole batch on one device.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import torch

from worker.training import Progress, TrainResult


class Dist:
    """What worker.training.train needs to know of the process group (its `dist` argument)."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world = rank, world

    def shard_batches(self, epoch_fn: Callable[[int], list[list[int]]]) -> Callable[[int], list[list[int]]]:
        """This rank's share of every global batch. A last batch smaller than N is merged into the
        one before it, so that every rank has at least one sample in every step."""
        def fn(epoch: int) -> list[list[int]]:
            batches = [list(b) for b in epoch_fn(epoch)]
            if len(batches) > 1 and len(batches[-1]) < self.world:
                batches[-2] += batches.pop()
            return [b[self.rank::self.world] for b in batches]
        return fn

    def wrap(self, model):
        """DDP around the (PEFT) model for the forward / backward; the bare model is what is saved."""
        from torch.nn.parallel import DistributedDataParallel

        dev = next(p.device for p in model.parameters())
        return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                                       find_unused_parameters=True)

    def loss(self, token_sum: torch.Tensor, n_tokens: int) -> torch.Tensor:
        """This rank's part of the global batch's mean token loss, scaled for DDP's gradient mean."""
        k = torch.tensor([float(n_tokens)], device=token_sum.device)
        torch.distributed.all_reduce(k)
        return token_sum / k.clamp(min=1) * self.world

    def global_loss(self, loss: torch.Tensor) -> float:
        v = loss.detach().clone().reshape(1)
        torch.distributed.all_reduce(v)
        return float(v) / self.world

    def any(self, flag: bool) -> bool:
        t = torch.tensor([1.0 if flag else 0.0])
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())


# ------------------------------------------------------------------ the launching side
def train_distributed(config, train_samples, *, devices: int, progress: Callable[[Progress], None] | None = None,
                      should_cancel: Callable[[], bool] | None = None, resume_from: str | Path | None = None,
                      val_samples=None, poll_s: float = 0.2) -> TrainResult:
    """worker.training.train over `devices` processes (torchrun, one machine)."""
    job = Path(config.output_dir) / "ddp"
    job.mkdir(parents=True, exist_ok=True)
    for name in ("progress.jsonl", "cancel", "result.pkl"):
        (job / name).unlink(missing_ok=True)
    with open(job / "job.pkl", "wb") as f:
        pickle.dump({"config": config, "samples": train_samples, "val_samples": val_samples,
                     "resume_from": str(resume_from) if resume_from is not None else None}, f)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    log = open(job / "torchrun.log", "wb")
    p = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
                          "-m", "worker.distributed", str(job)], env=env, stdout=log, stderr=subprocess.STDOUT)
    seen = 0
    try:
        while True:
            done = p.poll() is not None
            lines = (job / "progress.jsonl").read_text().splitlines() if (job / "progress.jsonl").exists() else []
            for line in lines[seen:]:
                if line.endswith("}") and progress is not None:
                    progress(Progress(**json.loads(line)))
            seen = len(lines)
            if done:
                break
            if should_cancel is not None and not (job / "cancel").exists() and should_cancel():
                (job / "cancel").touch()
            time.sleep(poll_s)
    except BaseException:  # lease lost, worker shutdown: no rank may go on writing the run's folder
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
        raise
    finally:
        log.close()
    if p.returncode != 0 or not (job / "result.pkl").exists():
        tail = (job / "torchrun.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"distributed training on {devices} processes failed (exit {p.returncode}):\n{tail}")
    with open(job / "result.pkl", "rb") as f:
        return pickle.load(f)


# ------------------------------------------------------------------ one rank (started by torchrun)
def _rank_main(job: Path) -> None:
    from worker.training import train

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    with open(job / "job.pkl", "rb") as f:
        spec = pickle.load(f)
    cfg = spec["config"]
    cuda = str(cfg.device).startswith("cuda") and torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local)
        cfg = replace(cfg, device=f"cuda:{local}")
    torch.distributed.init_process_group("nccl" if cuda else "gloo")
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    dist = Dist(rank, world)
    if rank != 0:  # scratch outputs: only rank 0 writes the run's checkpoints and adapter
        cfg = replace(cfg, output_dir=str(job / f"rank-{rank}"))
    out = open(job / "progress.jsonl", "a") if rank == 0 else None

    def progress(p: Progress) -> None:
        if out is not None:
            out.write(json.dumps(asdict(p)) + "\n")
            out.flush()

    def should_cancel() -> bool:  # every rank calls it each step: the same answer everywhere
        return dist.any(rank == 0 and (job / "cancel").exists())

    try:
        result = train(cfg, spec["samples"], val_samples=spec["val_samples"], progress=progress,
                       should_cancel=should_cancel, resume_from=spec["resume_from"], dist=dist)
        if rank == 0:
            with open(job / "result.pkl.tmp", "wb") as f:
                pickle.dump(result, f)
            os.replace(job / "result.pkl.tmp", job / "result.pkl")
    finally:
        if out is not None:
            out.close()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    _rank_main(Path(sys.argv[1]))
