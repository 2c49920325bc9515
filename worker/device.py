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


def resolve_dtype(name: str, device: str) -> str:
    """compute_dtype 'auto' -> 'bfloat16' on a CUDA device that supports it, else 'float16' on CUDA,
    'float32' on the CPU (half-precision matmuls there are slow or missing); explicit names stay."""
    if name != "auto":
        return name
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():  # estimating for a GPU elsewhere: Ampere or newer
            return "bfloat16"
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


def eval_precision(method: str, bits: int, quant_type: str, compute_dtype: str, device: str
                   ) -> tuple[str, dict | None, str]:
    """How evaluation loads a base: (dtype, quantization or None, a phrase for the run log).

    On CUDA the way the run trains it (QLoRA: 4/8-bit with the compute dtype; LoRA: the compute
    dtype), so a base that trains in 24 GB also evaluates in 24 GB; float32 on the CPU only."""
    if not str(device).startswith("cuda"):
        return "float32", None, "float32 (CPU)"
    dtype = resolve_dtype(compute_dtype, device)
    if method == "qlora":
        q = {"bits": bits, "quant_type": quant_type, "compute_dtype": dtype}
        return dtype, q, f"{bits}-bit {quant_type if bits == 4 else 'int8'}, compute {dtype}"
    return dtype, None, dtype
