"""LoRA / QLoRA fine-tuning of any registered family, with checkpoints that resume exactly.

Decisions worth knowing:
- Freezing a part (vision / projector / language) means nothing in it changes: LoRA adapters are
  only injected into target modules of *unfrozen* parts, and every parameter of a frozen part
  (adapters included, if any slipped in) gets requires_grad=False. Under LoRA the base weights are
  always frozen; an unfrozen part is trained through its adapters.
- The data stream is a pure function of (seed, epoch): per-epoch permutation, task-weight
  resampling, length grouping and object shuffling are all seeded from it, so a checkpoint only
  stores the position (epoch, batch index) and resume replays the same batches.
- The loss is computed here from logits and labels (token-mean per micro-batch), not taken from
  the model, so every family is trained and validated the same way; validation runs over the
  whole held-out set and is token-weighted.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from worker.augment import augment
from worker.device import eval_precision, resolve_dtype
from worker.train_config import BadConfig, TrainConfig
from worker.types import (
    BadImage,
    Box,
    BadTargetModules,
    EmptyDataset,
    QuantizationUnavailable,
    Sample,
)

CONFIG_NAME = "studio_train_config.json"
STATE_NAME = "trainer_state.pt"
HISTORY_NAME = "history.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Progress:
    step: int
    total: int
    loss: float
    learning_rate: float
    samples_per_s: float
    eta_s: float
    epoch: int
    val_loss: float | None = None


@dataclass
class TrainResult:
    adapter_dir: Path
    adapter_bytes: int
    steps: int
    losses: list[float]  # one per optimizer step, from step 1 (including steps before a resume)
    cancelled: bool = False
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    checkpoint_dir: Path | None = None
    trainable_params: int = 0
    tokens_real: int = 0  # attention-mask tokens of the batches trained in this call
    tokens_total: int = 0  # tokens processed (incl. padding): padding efficiency = real / total

    @property
    def padding_efficiency(self) -> float:
        return self.tokens_real / self.tokens_total if self.tokens_total else 1.0


# --------------------------------------------------------------------------- data order

def weight_group(s: Sample, weights: dict[str, float]) -> str:
    """The task_weights key that weighs a sample: "vqa:<family>" for a question of a family given
    its own weight (a dataset mix per question family, as LLaMA-Factory's interleave_probs per
    dataset), else its task ("detect" / "vqa")."""
    fam = f"{s.task}:{s.qtype}"
    return fam if s.task == "vqa" and fam in weights else s.task


def _group_members(samples: list[Sample], weights: dict[str, float]) -> dict[str, list[int]]:
    """Each weight group's (weight_group) sample indices, every sample grouped once."""
    members: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        members.setdefault(weight_group(s, weights), []).append(i)
    return members


def epoch_batches(
    samples: list[Sample],
    lengths: list[int],
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    group_by_length: bool,
    mega_batch_factor: int = 32,
    task_weights: dict[str, float] | None = None,
) -> list[list[int]]:
    """The batches (lists of sample indices) of one epoch; deterministic in (seed, epoch).

    Length grouping: shuffle, cut into mega-batches of `mega_batch_factor` batches, sort each
    mega-batch by length so neighbours have similar lengths, cut into batches, shuffle the batches.
    Randomness stays (different batches every epoch) while padding almost disappears.
    """
    rng = np.random.default_rng([seed, epoch])
    idx: list[int] = []
    if task_weights:
        # per group, round(weight × its sample count) draws an epoch; weight 1 = each sample once
        for group, ids in sorted(_group_members(samples, task_weights).items()):
            members = np.array(ids)
            full, rest = divmod(int(round(task_weights.get(group, 1.0) * len(ids))), len(members))
            idx.extend(np.tile(members, full).tolist())
            idx.extend(rng.choice(members, size=rest, replace=False).tolist())
    else:
        idx = list(range(len(samples)))
    order = [idx[i] for i in rng.permutation(len(idx))]
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    mega = batch_size * mega_batch_factor
    batches: list[list[int]] = []
    for m in range(0, len(order), mega):
        chunk = sorted(order[m : m + mega], key=lambda i: -lengths[i])  # stable: ties keep shuffle
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def largest_first(boxes: list[Box]) -> list[Box]:
    """Boxes by area, biggest first (stable: equal areas keep their order)."""
    return sorted(boxes, key=lambda b: -(b.x2 - b.x1) * (b.y2 - b.y1))


def ordered_objects(sample: Sample, order: str, seed: int, epoch: int, index: int) -> Sample:
    """A detection sample with its boxes in TrainConfig.object_order: "shuffle" (a new order for
    this epoch), "largest_first" (by area, stable) or "as_given". VQA answers refer to boxes by
    position, so they are left alone."""
    if sample.task != "detect" or len(sample.boxes) < 2 or order == "as_given":
        return sample
    if order == "largest_first":
        return dataclasses.replace(sample, boxes=largest_first(sample.boxes))
    perm = np.random.default_rng([seed, epoch, index, 7]).permutation(len(sample.boxes))
    return dataclasses.replace(sample, boxes=[sample.boxes[i] for i in perm])


def sample_length(family, processor, sample: Sample, size: tuple[int, int]) -> int:
    """Cheap token-length estimate used only for length grouping: prompt + target text tokens.
    Image tokens are constant per image size and are left out."""
    tok = getattr(processor, "tokenizer", processor)
    if hasattr(family, "prompt"):
        prompt = family.prompt(sample)
    else:
        prompt = sample.question if sample.task == "vqa" else " ; ".join(sample.classes)
    target = family.target_text(sample, *size)
    return len(tok(prompt or "").input_ids) + len(tok(target).input_ids)


class _StreamDataset(Dataset):
    """Indexed by (epoch, batch index, sample index) so the collated batch knows its position."""

    def __init__(self, samples: list[Sample], cfg: TrainConfig):
        self.samples, self.cfg = samples, cfg

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int, int]):
        epoch, bi, i = key
        s = self.samples[i]
        if self.cfg.augment != "none":  # a view fixed by (seed, epoch, index): resume and DDP see the same
            s = augment(s, self.cfg.augment, random.Random(f"{self.cfg.seed}-{epoch}-{i}"))
        s = ordered_objects(s, self.cfg.object_order, self.cfg.seed, epoch, i)
        return epoch, bi, s


class _Collate:
    """Picklable collate function (DataLoader workers): family.build_batch(train=True)."""

    def __init__(self, family, processor):
        self.family, self.processor = family, processor

    def __call__(self, items):
        epoch, bi = items[0][0], items[0][1]
        batch = self.family.build_batch(self.processor, [s for _, _, s in items], train=True)
        return epoch, bi, len(items), batch


class _BatchStream:
    """Batch sampler over an endless sequence of epochs, starting at a saved position."""

    def __init__(self, epoch_fn: Callable[[int], list[list[int]]], epoch: int, batch_index: int):
        self.epoch_fn, self.epoch, self.batch_index = epoch_fn, epoch, batch_index

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        epoch, start = self.epoch, self.batch_index
        while True:
            for bi, b in enumerate(self.epoch_fn(epoch)[start:], start=start):
                yield [(epoch, bi, i) for i in b]
            epoch, start = epoch + 1, 0


# --------------------------------------------------------------------------- model set-up

def probe_quantization(bits: int, device: str, compute_dtype: torch.dtype = torch.float32) -> None:
    """Run one tiny quantised matmul on `device`; QuantizationUnavailable if bitsandbytes can't."""
    try:
        import bitsandbytes as bnb

        x = torch.randn(2, 64, device=device, dtype=compute_dtype)
        if bits == 4:
            layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=compute_dtype, quant_type="nf4")
        else:
            layer = bnb.nn.Linear8bitLt(64, 64, bias=False, has_fp16_weights=False)
        out = layer.to(device)(x)
        if not torch.isfinite(out).all():
            raise RuntimeError("non-finite output")
    except Exception as e:  # noqa: BLE001 - any failure means the path is unusable here
        raise QuantizationUnavailable(
            f"QLoRA ({bits}-bit) cannot run on device {device!r}: bitsandbytes failed a test op: {e}"
        ) from e


def _part_param_ids(family, model) -> dict[str, set[int]]:
    return {
        "vision": {id(p) for p in family.vision_params(model)},
        "projector": {id(p) for p in family.projector_params(model)},
        "language": {id(p) for p in family.language_params(model)},
    }


def _frozen_parts(cfg: TrainConfig) -> list[str]:
    return [p for p, f in (("vision", cfg.freeze_vision), ("projector", cfg.freeze_projector),
                           ("language", cfg.freeze_language)) if f]


def _is_linear(mod: torch.nn.Module) -> bool:
    if isinstance(mod, torch.nn.Linear):
        return True
    try:
        import bitsandbytes as bnb

        return isinstance(mod, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt))
    except Exception:  # noqa: BLE001
        return False


def resolve_target_modules(family, model, cfg: TrainConfig) -> list[str]:
    """Full names of the Linear modules that get LoRA adapters (only in unfrozen parts).

    A requested name matches a module when it equals the module's last name component or a dotted
    suffix of its path; a name that matches no Linear anywhere in the model is BadTargetModules.
    """
    wanted = family.lora_target_modules(model) if cfg.target_modules == "all-linear" else list(cfg.target_modules)
    linears = {n: m for n, m in model.named_modules() if n and _is_linear(m)}
    unknown = [w for w in wanted if not any(n == w or n.endswith("." + w) for n in linears)]
    if unknown:
        examples = sorted({n.rsplit(".", 1)[-1] for n in linears})
        raise BadTargetModules(
            f"target module(s) {', '.join(map(repr, unknown))} match no Linear layer of this "
            f"{cfg.family} model (its Linear names: {', '.join(examples)})"
        )
    parts = _part_param_ids(family, model)
    frozen = set().union(*(parts[p] for p in _frozen_parts(cfg))) if _frozen_parts(cfg) else set()
    names = [
        n for n, m in linears.items()
        if any(n == w or n.endswith("." + w) for w in wanted) and id(m.weight) not in frozen
    ]
    modules = dict(model.named_modules())
    unknown = [w for w in cfg.modules_to_save if not any(n == w or n.endswith("." + w) for n in modules)]
    if unknown:
        raise BadTargetModules(f"modules_to_save {', '.join(map(repr, unknown))} match no module of this "
                               f"{cfg.family} model")
    if not names:
        raise BadTargetModules(
            f"target modules {wanted} all lie in frozen parts ({', '.join(_frozen_parts(cfg))}): nothing to train"
        )
    return names


def _lora_config(cfg: TrainConfig, targets: list[str]):
    from peft import LoraConfig

    # Full module paths, anchored: peft matches a string target as a suffix, a regex fully.
    pattern = "^(" + "|".join(t.replace(".", r"\.") for t in targets) + ")$"
    return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=pattern, bias="none", modules_to_save=list(cfg.modules_to_save) or None)


def compute_dtype(cfg: TrainConfig) -> torch.dtype:
    return DTYPES[resolve_dtype(cfg.compute_dtype, cfg.device)]


def _load_base(family, cfg: TrainConfig):
    dtype = compute_dtype(cfg)
    family.pixel_cap = cfg.max_pixels
    if cfg.method == "qlora":
        probe_quantization(cfg.bits, cfg.device, dtype)
        quant = {"bits": cfg.bits, "quant_type": cfg.quant_type, "compute_dtype": dtype}
        model, processor = family.load(cfg.base_model, dtype=torch.float32, quantization=quant, device=cfg.device)
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.checkpointing_on())
    else:
        model, processor = family.load(cfg.base_model, dtype=dtype, device=cfg.device)
        for p in model.parameters():
            p.requires_grad_(False)
        if cfg.checkpointing_on():
            model.gradient_checkpointing_enable()
            model.enable_input_require_grads()
    return model, processor


def build_model(family, cfg: TrainConfig):
    """Base model + LoRA adapters, with the configured parts frozen. Returns (peft_model, processor)."""
    from peft import get_peft_model

    model, processor = _load_base(family, cfg)
    targets = resolve_target_modules(family, model, cfg)
    torch.manual_seed(cfg.seed)  # LoRA A matrices are drawn from the global RNG
    model = get_peft_model(model, _lora_config(cfg, targets))
    apply_freezing(family, model, cfg)
    return model, processor


def apply_freezing(family, peft_model, cfg: TrainConfig) -> None:
    inner = peft_model.get_base_model()
    parts = _part_param_ids(family, inner)
    for part in _frozen_parts(cfg):
        for p in inner.parameters():
            if id(p) in parts[part]:
                p.requires_grad_(False)


# --------------------------------------------------------------------------- loss / validation

def _to_device(batch: dict[str, Any], device: str, dtype: torch.dtype) -> dict[str, Any]:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device)
            if v.is_floating_point():
                v = v.to(dtype)
        out[k] = v
    return out


class LocationTargets:
    """Cross-entropy with soft targets for location tokens (TrainConfig.loc_sigma): where the next
    token is a coordinate bin, the target is a Gaussian over the neighbouring bins (sigma in bins)
    instead of that one bin; other tokens keep plain cross-entropy."""

    def __init__(self, token_ids: list[int], sigma: float):
        self.ids = torch.as_tensor(token_ids, dtype=torch.long)  # bin order
        self.sigma = float(sigma)
        self._bin_of: torch.Tensor | None = None

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Summed loss of (n, vocab) fp32 logits against (n,) target ids."""
        ids = self.ids.to(logits.device)
        if self._bin_of is None or len(self._bin_of) != logits.shape[-1] or self._bin_of.device != logits.device:
            self._bin_of = torch.full((logits.shape[-1],), -1, dtype=torch.long, device=logits.device)
            self._bin_of[ids] = torch.arange(len(ids), device=logits.device)
        b = self._bin_of[targets]
        loc = b >= 0
        total = torch.nn.functional.cross_entropy(logits[~loc], targets[~loc], reduction="sum")
        if loc.any():
            bins = torch.arange(len(ids), dtype=torch.float32, device=logits.device)
            w = torch.softmax(-0.5 * ((bins[None] - b[loc, None].float()) / self.sigma) ** 2, dim=-1)
            total = total - (w * torch.log_softmax(logits[loc], -1)[:, ids]).sum()
        return total


def token_loss(model, batch: dict[str, Any], soft: LocationTargets | None = None) -> tuple[torch.Tensor, int]:
    """(sum of next-token cross-entropy over answer tokens, number of answer tokens); with `soft`,
    location tokens get soft targets.

    Logits are computed only at the positions that predict an answer token: a boolean
    `logits_to_keep` mask slices the hidden states *before* the LM head (transformers'
    slice_logits_to_keep), so with 1,000+ image tokens and a 150k-257k vocabulary the head
    produces (answer tokens x vocab) instead of (batch x sequence x vocab), and only those few
    rows are upcast to fp32 for the loss."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    labels = batch["labels"]
    targets = labels[:, 1:]
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = targets != -100  # position p predicts token p+1
    n = int(keep.sum())
    if n == 0:
        logits = model(**inputs, logits_to_keep=1).logits
        return logits.sum() * 0.0, 0  # keeps the graph (and DDP / grad-accum arithmetic) intact
    logits = model(**inputs, logits_to_keep=keep.to(inputs["input_ids"].device)).logits  # (n, vocab)
    wanted = targets[keep[:, :-1]].to(logits.device)
    if soft is not None:
        return soft.loss(logits.float(), wanted), n
    return torch.nn.functional.cross_entropy(logits.float(), wanted, reduction="sum"), n


def soft_location_tokens(family, cfg: TrainConfig) -> list[str] | None:
    """The location tokens TrainConfig.loc_sigma softens (None at 0); BadConfig where the family
    writes coordinates as text."""
    if not cfg.loc_sigma:
        return None
    names = family.location_tokens()
    if not names:
        from worker.families import REGISTRY

        having = ", ".join(n for n, cls in REGISTRY.items() if cls().location_tokens())
        raise BadConfig(f"loc_sigma={cfg.loc_sigma!r}: family {family.name} writes box coordinates as text, not "
                        f"location tokens (soft location targets need them: {having}); use 0")
    return names


def _keep_bnb_training_mode(model) -> None:
    """bitsandbytes' Linear4bit repacks its weights in place on CPU the first time it runs in eval
    mode without grad (and asserts out_features % 32 == 0 for it); during training that would
    change the layers under the optimizer's feet, so they stay in training mode (they have no
    dropout: the flag changes nothing else)."""
    try:
        import bitsandbytes as bnb
    except Exception:  # noqa: BLE001
        return
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.training = True


@torch.no_grad()
def validation_loss(model, family, processor, samples: list[Sample], *, batch_size: int,
                    device: str = "cpu", dtype: torch.dtype = torch.float32,
                    soft: LocationTargets | None = None) -> float:
    """Token-weighted mean loss over the *whole* held-out set (every sample, every batch)."""
    was_training = model.training
    model.eval()
    _keep_bnb_training_mode(model)
    total, n = 0.0, 0
    try:
        for i in range(0, len(samples), batch_size):
            batch = family.build_batch(processor, samples[i : i + batch_size], train=True)
            s, k = token_loss(model, _to_device(batch, device, dtype), soft)
            total, n = total + float(s), n + k
    finally:
        model.train(was_training)
    return total / max(n, 1)


# --------------------------------------------------------------------------- checkpoints

def _rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"].cpu())  # map_location may have moved it
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.cpu() for t in st["cuda"]])


def _dir_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in Path(d).rglob("*") if f.is_file())


def _save_adapter(model, cfg: TrainConfig, out: Path, dtype: torch.dtype | None = None) -> int:
    """The adapter (+ its TrainConfig); with `dtype`, its float tensors are stored in that dtype
    (the final adapter in the training dtype: a bf16 run's rank-8 adapter is half the fp32 size.
    Checkpoints keep peft's float32 LoRA weights, so a resume continues exactly)."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    f = out / "adapter_model.safetensors"
    if dtype is not None and dtype != torch.float32 and f.is_file():
        from safetensors.torch import load_file, save_file

        sd = {k: v.to(dtype) if v.is_floating_point() else v for k, v in load_file(f).items()}
        save_file(sd, f, metadata={"format": "pt"})
    cfg.save(out / CONFIG_NAME)
    return _dir_bytes(out)


def save_checkpoint(out: Path, *, model, cfg, optimizer, scheduler, step, position, losses, lrs,
                    val_losses) -> Path:
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _save_adapter(model, cfg, tmp / "adapter")
    torch.save({"step": step, "position": position, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": _rng_state()}, tmp / STATE_NAME)
    # The curve up to this step, its only copy, readable without the optimizer state: a worker
    # killed between this save and its next progress write resumes here and restores the steps it
    # never reported (worker.runner.resumed_history).
    (tmp / HISTORY_NAME).write_text(json.dumps({"losses": losses, "lrs": lrs, "val_losses": val_losses}))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)  # a crash mid-save never leaves a half-written checkpoint under the real name
    return out


def _curve(ck: Path, state: dict) -> tuple[list[float], list[float | None], list[tuple[int, float]]]:
    """(losses, learning rates, (step, validation loss)) saved with checkpoint `ck`. A checkpoint
    saved before history.json existed kept losses in its state and no learning rates."""
    f = Path(ck) / HISTORY_NAME
    if not f.exists():
        return list(state["losses"]), [None] * len(state["losses"]), list(state["val_losses"])
    h = json.loads(f.read_text())
    return h["losses"], h["lrs"], [(int(st), v) for st, v in h["val_losses"]]


def checkpoint_history(ck: Path) -> list[dict]:
    """The loss curve a checkpoint saved: one {step, loss, lr} per optimizer step from step 1
    (val_loss where the held-out loss was measured); empty for checkpoints saved before it existed."""
    if not (Path(ck) / HISTORY_NAME).exists():
        return []
    losses, lrs, val = _curve(ck, {})
    val_at = dict(val)
    return [{"step": i, "loss": loss, "lr": lr, **({"val_loss": val_at[i]} if i in val_at else {})}
            for i, (loss, lr) in enumerate(zip(losses, lrs), 1)]


def latest_checkpoint(path: Path) -> Path:
    """`path` itself if it is a checkpoint, else the newest checkpoint under path/checkpoints."""
    path = Path(path)
    if (path / STATE_NAME).exists():
        return path
    cks = sorted((path / "checkpoints").glob("step-*[0-9]"))
    if not cks:
        raise FileNotFoundError(f"no checkpoint found in {path}")
    return cks[-1]


def _prune(ck_root: Path, keep: int) -> None:
    for old in sorted(ck_root.glob("step-*[0-9]"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- the loop

def _make_scheduler(optimizer, cfg: TrainConfig, total: int):
    from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                              get_linear_schedule_with_warmup)

    warmup = math.ceil(cfg.warmup_ratio * total)
    if cfg.scheduler == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup, total)
    if cfg.scheduler == "linear":
        return get_linear_schedule_with_warmup(optimizer, warmup, total)
    return get_constant_schedule_with_warmup(optimizer, warmup)


def _check_samples(samples: list[Sample], family) -> list[tuple[int, int]]:
    """Image sizes; a sample whose image doesn't decode is BadImage, found before any step."""
    sizes = []
    for i, s in enumerate(samples):
        try:
            if hasattr(s.image, "size") and not isinstance(s.image, (str, Path)):
                sizes.append(tuple(s.image.size))
            else:
                from PIL import Image

                with Image.open(s.image) as im:
                    im.verify()  # header + structure check without a full decode
                with Image.open(s.image) as im:
                    sizes.append(im.size)
        except Exception as e:  # noqa: BLE001
            raise BadImage(f"training sample {i} (image_id={s.image_id!r}): image {s.image!r} "
                           f"cannot be decoded: {e}") from e
        if s.task == "vqa" and not (s.question and s.answer is not None):
            raise BadConfig(f"training sample {i} (image_id={s.image_id!r}): a vqa sample needs question and answer")
        if s.task == "detect" and not s.classes:
            raise BadConfig(f"training sample {i} (image_id={s.image_id!r}): a detect sample needs classes")
    return sizes


# Options that may change between a run and its resume: they don't alter the model, the optimizer
# state or the data order. A new max_steps / epochs rebuilds the LR schedule for the new total,
# continuing at the saved step (extending a run); otherwise the resumed run equals the straight one.
RESUME_MAY_CHANGE = {"output_dir", "checkpoint_every", "keep_checkpoints", "eval_every", "num_workers",
                     "max_steps", "epochs", "device"}


def _check_resumable(cfg: TrainConfig, saved: TrainConfig, ck: Path) -> None:
    new, old = cfg.to_dict(), saved.to_dict()
    diff = sorted(k for k in new if k not in RESUME_MAY_CHANGE and new[k] != old.get(k))
    if diff:
        raise BadConfig(f"cannot resume from {ck}: option(s) differ from the checkpoint's run: "
                        + ", ".join(f"{k}={new[k]!r} (was {old.get(k)!r})" for k in diff))


def total_steps(cfg: TrainConfig, batches_per_epoch: int) -> int:
    if cfg.max_steps is not None:
        return cfg.max_steps
    return max(1, math.ceil(cfg.epochs * batches_per_epoch / cfg.grad_accum))


def train(
    config: TrainConfig,
    train_samples: list[Sample],
    *,
    val_samples: list[Sample] | None = None,
    progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    resume_from: str | Path | None = None,
    dist=None,  # worker.distributed.Dist: this process is one rank of several (DDP)
) -> TrainResult:
    from worker.families import get_family

    cfg = config
    cfg.validate()
    if not train_samples:
        raise EmptyDataset("the training set is empty: nothing to train on")
    if cfg.task_weights:
        present = {weight_group(s, cfg.task_weights) for s in train_samples}
        if not any(cfg.task_weights.get(t, 1.0) > 0 for t in present):
            raise EmptyDataset(f"task_weights {cfg.task_weights} give weight 0 to every task present ({sorted(present)})")
    family = get_family(cfg.family)
    soft_names = soft_location_tokens(family, cfg)  # a loc_sigma the family cannot use fails before loading
    sizes = _check_samples(train_samples, family)
    if str(cfg.device).startswith("cuda"):  # refuse now what would run out of memory an hour in
        from worker.estimate import check_fits, device_gb, estimate_config

        big = max(sizes, key=lambda wh: wh[0] * wh[1])
        try:
            est = estimate_config(cfg, image_size=big, device=cfg.device, device_gb=device_gb(cfg.device))
        except Exception as e:  # noqa: BLE001 - an estimate that cannot be made must not block the run
            import logging

            logging.getLogger("studio.training").warning("no memory estimate for %s: %s", cfg.base_model, e)
        else:
            check_fits(est, cfg.device)
    out_dir = Path(cfg.output_dir)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)

    model, processor = build_model(family, cfg)  # missing model / mismatch / bad targets raise here
    soft = LocationTargets(processor.tokenizer.convert_tokens_to_ids(soft_names), cfg.loc_sigma) if soft_names else None
    dtype = compute_dtype(cfg) if cfg.method == "lora" else torch.float32
    params = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in params)
    lengths = [sample_length(family, processor, s, sz) for s, sz in zip(train_samples, sizes)]

    def epoch_fn(epoch: int) -> list[list[int]]:
        return epoch_batches(train_samples, lengths, batch_size=cfg.batch_size, seed=cfg.seed, epoch=epoch,
                             group_by_length=cfg.group_by_length, mega_batch_factor=cfg.mega_batch_factor,
                             task_weights=cfg.task_weights or None)

    if dist is not None:
        epoch_fn = dist.shard_batches(epoch_fn)
    per_epoch = len(epoch_fn(0))
    if per_epoch == 0:
        raise EmptyDataset(f"task_weights {cfg.task_weights} leave no training sample in an epoch")
    total = total_steps(cfg, per_epoch)
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scheduler = _make_scheduler(optimizer, cfg, total)

    step, position, losses, lrs, val_losses = 0, (0, 0), [], [], []
    if resume_from is not None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        ck = latest_checkpoint(Path(resume_from))
        _check_resumable(cfg, TrainConfig.load(ck / "adapter" / CONFIG_NAME), ck)
        # map_location: a run may resume on another device than the one that saved it
        state = torch.load(ck / STATE_NAME, weights_only=False, map_location=cfg.device)
        set_peft_model_state_dict(model, load_file(ck / "adapter" / "adapter_model.safetensors", device=cfg.device))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        step, position = state["step"], tuple(state["position"])
        losses, lrs, val_losses = _curve(ck, state)

    loader = DataLoader(
        _StreamDataset(train_samples, cfg),
        batch_sampler=_BatchStream(epoch_fn, *position),
        collate_fn=_Collate(family, processor),
        num_workers=cfg.num_workers,
        prefetch_factor=4 if cfg.num_workers else None,
        persistent_workers=False,
        # Own generator: the loader's base-seed draw must not consume the global RNG, or dropout
        # after a resume would differ from the straight run.
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    ck_root = out_dir / "checkpoints"
    last_ck: Path | None = None
    bar = None
    if progress is None:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=step, desc=f"train {cfg.family}", unit="step")

    def checkpoint() -> Path:
        nonlocal last_ck
        last_ck = save_checkpoint(ck_root / f"step-{step:07d}", model=model, cfg=cfg, optimizer=optimizer,
                                  scheduler=scheduler, step=step, position=position, losses=losses,
                                  lrs=lrs, val_losses=val_losses)
        _prune(ck_root, cfg.keep_checkpoints)
        return last_ck

    def validate() -> float | None:
        if not val_samples:
            return None
        v = validation_loss(model, family, processor, val_samples, batch_size=cfg.batch_size,
                            device=cfg.device, dtype=dtype, soft=soft)
        val_losses.append((step, v))
        return v

    model.train()
    fwd = model if dist is None else dist.wrap(model)
    it = iter(loader)
    cancelled = False
    t_start, steps_this_run = time.perf_counter(), 0
    tokens_real = tokens_total = 0
    try:
        while step < total:
            if should_cancel is not None and should_cancel():
                cancelled = True
                break
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            step_loss, n_samples = 0.0, 0
            for _ in range(cfg.grad_accum):
                epoch, bi, n, batch = next(it)
                batch = _to_device(batch, cfg.device, dtype)
                tokens_real += int(batch["attention_mask"].sum())
                tokens_total += batch["attention_mask"].numel()
                s, k = token_loss(fwd, batch, soft)
                loss = s / max(k, 1) if dist is None else dist.loss(s, k)
                (loss / cfg.grad_accum).backward()
                step_loss += (float(loss.detach()) if dist is None else dist.global_loss(loss)) / cfg.grad_accum
                n_samples += n
                position = (epoch, bi + 1)
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            step += 1
            steps_this_run += 1
            losses.append(step_loss)
            lrs.append(lr)
            v = validate() if cfg.eval_every and step % cfg.eval_every == 0 and step < total else None
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                checkpoint()
            dt = time.perf_counter() - t0
            elapsed = time.perf_counter() - t_start
            eta = elapsed / steps_this_run * (total - step)
            info = Progress(step=step, total=total, loss=step_loss, learning_rate=lr,
                            samples_per_s=n_samples / dt if dt > 0 else 0.0, eta_s=eta,
                            epoch=position[0], val_loss=v)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}")
            else:
                progress(info)
    finally:
        if bar is not None:
            bar.close()
        del it  # stop DataLoader workers

    if cancelled:
        ck = last_ck if last_ck is not None and last_ck.name == f"step-{step:07d}" else checkpoint()
        adapter = ck / "adapter"
        return TrainResult(adapter_dir=adapter, adapter_bytes=_dir_bytes(adapter), steps=step, losses=losses,
                           cancelled=True, val_losses=val_losses, checkpoint_dir=ck, trainable_params=n_trainable,
                           tokens_real=tokens_real, tokens_total=tokens_total)
    if val_samples:
        validate()
    adapter = out_dir / "adapter"
    size = _save_adapter(model, cfg, adapter, compute_dtype(cfg))
    return TrainResult(adapter_dir=adapter, adapter_bytes=size, steps=step, losses=losses, cancelled=False,
                       val_losses=val_losses, checkpoint_dir=last_ck, trainable_params=n_trainable,
                       tokens_real=tokens_real, tokens_total=tokens_total)


# --------------------------------------------------------------------------- merge

def load_for_eval(family, path: str | Path, *, method: str = "lora", bits: int = 4, quant_type: str = "nf4",
                  compute_dtype: str = "auto", device: str = "cpu", max_pixels: int | None = None):
    """(model, processor, note): a base loaded for evaluation the way a run with these settings
    trains it (worker.device.eval_precision); `note` says how, for the run log."""
    dtype, quant, note = eval_precision(method, bits, quant_type, compute_dtype, device)
    family.pixel_cap = max_pixels
    model, processor = family.load(str(path), dtype=dtype, quantization=quant, device=device)
    return model, processor, note


def load_with_adapter(adapter_dir: str | Path, base_path: str | Path | None = None, *, device: str = "cpu",
                      full_precision: bool = False):
    """(peft model, processor, family) for base + adapter, unmerged. The base is loaded the way the
    adapter's run trained it on CUDA (load_for_eval), in float32 on the CPU or with full_precision."""
    from peft import PeftModel

    from worker.families import get_family

    cfg = TrainConfig.load(Path(adapter_dir) / CONFIG_NAME)
    family = get_family(cfg.family)
    base = base_path or cfg.base_model
    if full_precision:
        family.pixel_cap = cfg.max_pixels
        model, processor = family.load(base, dtype=torch.float32, device=device)
    else:
        model, processor, _ = load_for_eval(family, base, method=cfg.method, bits=cfg.bits, quant_type=cfg.quant_type,
                                            compute_dtype=cfg.compute_dtype, device=device, max_pixels=cfg.max_pixels)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    return model, processor, family


def merged_dtype(cfg: TrainConfig) -> torch.dtype:
    """A merged model is written in half precision: the run's half compute dtype, else bfloat16."""
    return DTYPES[cfg.compute_dtype] if cfg.compute_dtype in ("bfloat16", "float16") else torch.bfloat16


def merge(base_path: str | Path, adapter_dir: str | Path, out_dir: str | Path, *,
          dtype: str | torch.dtype | None = None) -> Path:
    """Merge the adapter into the (unquantised, float32) base and save a standalone model +
    processor that loads with the family's load(), written in `dtype` (default merged_dtype: half
    precision, so a 7B merge is ~15 GB, not 30). QLoRA adapters merge into the full base too."""
    model, processor, _ = load_with_adapter(adapter_dir, base_path, full_precision=True)
    merged = model.merge_and_unload()
    out_dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    merged = merged.to(out_dtype or merged_dtype(TrainConfig.load(Path(adapter_dir) / CONFIG_NAME)))
    inp, outp = merged.get_input_embeddings(), merged.get_output_embeddings()
    if outp is not None and inp is not None and outp.weight.data_ptr() != inp.weight.data_ptr():
        # A trained lm_head (modules_to_save) is no longer the embedding matrix: saving with
        # tie_word_embeddings=True would silently re-tie it to the embeddings on load.
        for c in (merged.config, getattr(merged.config, "text_config", None)):
            if c is not None and getattr(c, "tie_word_embeddings", False):
                c.tie_word_embeddings = False
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    processor.save_pretrained(out)
    return out
