"""Device and CPU-thread choice for the ML core."""
from __future__ import annotations

import os

import torch


def pick_device(requested: str | None = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; an explicit 'cuda' without one is an error
    (silently training a 3B model on the CPU would look like a hang)."""
    req = (requested or "auto").lower()
    if req == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if req.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but torch sees no CUDA device")
    if req not in ("cpu", "mps") and not req.startswith("cuda"):
        raise ValueError(f"unknown device {requested!r}; use auto, cpu or cuda[:N]")
    return req


def set_threads(n: int | None = None) -> int:
    """CPU threads for torch: `n`, else $STUDIO_TORCH_THREADS, else all cores. Returns the count set."""
    n = n or int(os.environ.get("STUDIO_TORCH_THREADS", 0)) or os.cpu_count() or 1
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()
