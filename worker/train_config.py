"""The training configuration: one dataclass, validated up front (before any model is loaded).

Field names follow seed 002's knobs. `TrainConfig.from_dict` is what the Celery task calls with a
Run's config JSON; unknown keys are an error, so a misspelled knob (the classic silently ignored
`bnb_4bit_compute_dtyp`) fails loudly instead of training with defaults.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from worker.types import StudioMLError

METHODS = ("lora", "qlora")
SCHEDULERS = ("cosine", "linear", "constant")
QUANT_TYPES = ("nf4", "fp4")
DTYPES = ("auto", "float32", "bfloat16", "float16")
# Qwen's grounding recipes cap the input at 1280 * 28 * 28 pixels (1280 merged image tokens), far
# below the hub processor's 12.8 MP; a cap only ever lowers the processor's own bound.
DEFAULT_MAX_PIXELS = 1280 * 28 * 28
TASKS = ("detect", "vqa")


class BadConfig(StudioMLError, ValueError):
    """A training configuration that cannot be run; the message names the field."""


@dataclass
class TrainConfig:
    family: str
    base_model: str  # local save_pretrained folder or hub id
    output_dir: str
    method: Literal["lora", "qlora"] = "lora"
    bits: int = 4  # qlora only: 4 or 8
    quant_type: str = "nf4"  # qlora 4-bit only
    # qlora: bnb compute dtype; lora: dtype the base is loaded in. auto: bf16 on a CUDA device that
    # supports it, else fp16; fp32 on the CPU (worker.device.resolve_dtype)
    compute_dtype: str = "auto"
    rank: int = 8
    alpha: float = 16
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    # Whole modules trained (and saved) beside the adapters, e.g. a final norm or a new head.
    modules_to_save: list[str] = field(default_factory=list)
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    epochs: float = 1
    max_steps: int | None = None  # overrides epochs when set
    batch_size: int = 4
    grad_accum: int = 1
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = 0.0
    freeze_vision: bool = True
    freeze_projector: bool = False
    freeze_language: bool = False
    seed: int = 0
    checkpoint_every: int = 0  # optimizer steps; 0 = only at the end / on cancel
    keep_checkpoints: int = 2
    eval_every: int = 0  # validation loss over the whole held-out set every N steps (0 = at the end)
    # detection targets' object order: "shuffle" = new order every epoch (no order to learn),
    # "largest_first" = biggest box first (a canonical order: the most salient object is decoded
    # first; what a model pre-trained that way expects), "as_given" = the dataset's order.
    object_order: Literal["shuffle", "largest_first", "as_given"] = "shuffle"
    # training-time views (worker/augment.py): "flip" mirrors detection and counting samples,
    # "crop_flip" also crops detection samples at random, so objects that always sit in one place
    # (a camera behind a kart) move and a small data set does not teach where they usually are.
    augment: Literal["none", "flip", "crop_flip"] = "none"
    # Soft location targets, in bins (0: plain cross-entropy), for families whose boxes are location
    # tokens (PaliGemma's 1024 bins): a coordinate token's target is a Gaussian over the neighbouring
    # bins, so an answer 3 bins off is nearly right, not as wrong as one 500 bins off, and a small
    # data set does not sharpen each coordinate onto the few exact bins it saw.
    loc_sigma: float = 0.0
    group_by_length: bool = True
    mega_batch_factor: int = 32  # length grouping sorts inside shuffled windows of this many batches
    task_weights: dict[str, float] = field(default_factory=dict)  # e.g. {"detect": 1, "vqa": 0.5, "vqa:spatial": 4}
    num_workers: int = 0  # DataLoader worker processes for the collator
    device: str = "cpu"
    gradient_checkpointing: bool | Literal["auto"] = "auto"  # auto: on for CUDA, off on the CPU
    max_pixels: int | None = DEFAULT_MAX_PIXELS  # Qwen families: cap on the model input's pixels

    def checkpointing_on(self) -> bool:
        """gradient_checkpointing resolved for this config's device."""
        if self.gradient_checkpointing == "auto":
            return str(self.device).startswith("cuda")
        return bool(self.gradient_checkpointing)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise BadConfig(f"unknown training option(s): {', '.join(unknown)}")
        missing = [n for n in ("family", "base_model", "output_dir") if n not in d]
        if missing:
            raise BadConfig(f"missing training option(s): {', '.join(missing)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def validate(self) -> None:
        def bad(name: str, why: str) -> None:
            raise BadConfig(f"{name}={getattr(self, name)!r}: {why}")

        if not self.family:
            bad("family", "a model family is required")
        if not self.base_model:
            bad("base_model", "a base model path or hub id is required")
        if self.method not in METHODS:
            bad("method", f"must be one of {METHODS}")
        if self.bits not in (4, 8):
            bad("bits", "must be 4 or 8")
        if self.quant_type not in QUANT_TYPES:
            bad("quant_type", f"must be one of {QUANT_TYPES}")
        if self.compute_dtype not in DTYPES:
            bad("compute_dtype", f"must be one of {DTYPES}")
        if not (isinstance(self.rank, int) and self.rank >= 1):
            bad("rank", "must be an integer >= 1")
        if not self.alpha > 0:
            bad("alpha", "must be > 0")
        if not 0 <= self.dropout < 1:
            bad("dropout", "must be in [0, 1)")
        tm = self.target_modules
        if isinstance(tm, str):
            if tm != "all-linear":
                bad("target_modules", "must be 'all-linear' or a list of module names")
        elif not (isinstance(tm, (list, tuple)) and tm and all(isinstance(x, str) and x for x in tm)):
            bad("target_modules", "must be 'all-linear' or a non-empty list of module names")
        if not (isinstance(self.modules_to_save, (list, tuple)) and all(isinstance(x, str) and x for x in self.modules_to_save)):
            bad("modules_to_save", "must be a list of module names")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            bad("learning_rate", "must be a finite number > 0")
        if self.weight_decay < 0:
            bad("weight_decay", "must be >= 0")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            bad("max_grad_norm", "must be > 0 or null")
        if self.max_steps is None:
            if not self.epochs > 0:
                bad("epochs", "must be > 0 (or set max_steps)")
        elif not (isinstance(self.max_steps, int) and self.max_steps >= 1):
            bad("max_steps", "must be an integer >= 1")
        for name in ("batch_size", "grad_accum", "mega_batch_factor", "keep_checkpoints"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                bad(name, "must be an integer >= 1")
        for name in ("checkpoint_every", "eval_every", "num_workers"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 0):
                bad(name, "must be an integer >= 0")
        if self.gradient_checkpointing not in (True, False, "auto"):
            bad("gradient_checkpointing", "must be true, false or 'auto'")
        if self.max_pixels is not None and not (isinstance(self.max_pixels, int) and self.max_pixels >= 56 * 56):
            bad("max_pixels", f"must be an integer >= {56 * 56} (one 56x56 image) or null")
        if isinstance(self.loc_sigma, bool) or not (isinstance(self.loc_sigma, (int, float))
                                                    and math.isfinite(self.loc_sigma) and 0 <= self.loc_sigma <= 1024):
            bad("loc_sigma", "must be a number of bins from 0 (plain cross-entropy) to 1024")
        if self.scheduler not in SCHEDULERS:
            bad("scheduler", f"must be one of {SCHEDULERS}")
        if not 0 <= self.warmup_ratio < 1:
            bad("warmup_ratio", "must be in [0, 1)")
        if self.freeze_vision and self.freeze_projector and self.freeze_language:
            raise BadConfig("freeze_vision, freeze_projector and freeze_language are all true: nothing to train")
        for task, w in self.task_weights.items():
            if task not in TASKS and not (task.startswith("vqa:") and len(task) > 4):
                raise BadConfig(f"task_weights: unknown task {task!r} (known: {TASKS}, or vqa:<question family>)")
            if not (w >= 0 and math.isfinite(w)):
                raise BadConfig(f"task_weights[{task!r}]={w!r}: must be a finite number >= 0")
        if self.task_weights and not any(w > 0 for w in self.task_weights.values()):
            raise BadConfig("task_weights: at least one task needs a weight > 0")
