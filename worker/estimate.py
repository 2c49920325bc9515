"""Pre-flight peak-memory estimate of a run, from the model's config.json alone.

The model is built on the meta device (no weights read or allocated) to count parameters per part
and the Linear layers LoRA will wrap; the arithmetic then follows what the training step holds:

- weights: QLoRA quantises every Linear but the LM head (4-bit: 0.5 B + ~0.07 B of scales per
  parameter; 8-bit: ~1.03 B); peft's prepare_model_for_kbit_training upcasts the rest (embeddings,
  norms, convolutions) to fp32. LoRA keeps the base in the compute dtype.
- LoRA: rank x (in + out) per wrapped Linear of the unfrozen parts, fp32: weight + grad + AdamW's
  two moments = 16 B per parameter.
- activations: per token of a part on the gradient path, each Linear's input and output in the
  compute dtype, twice (LoRA's dropout copy, norms, activation functions): 2 x sum(in + out) bytes.
  With gradient checkpointing only each layer's input is kept, plus one layer recomputed.
- logits: only the answer positions reach the LM head (training.token_loss): answer tokens x
  vocabulary x (compute dtype + fp32 copy + log-softmax; Gemma 2's soft-capping 3 more).
- evaluation: weights as evaluation loads them (worker.device.eval_precision) + the KV cache of
  an eval batch + one layer's prefill.
On CUDA a fixed 0.6 GB (context, cuBLAS workspace) and 10 % allocator slack are added.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from worker.device import eval_precision, resolve_dtype
from worker.types import StudioMLError

GB = 1024 ** 3
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
PARTS = ("vision", "projector", "language")


@dataclass
class PartCount:
    params: int = 0
    linear_params: int = 0  # weights of nn.Linear layers (what bitsandbytes quantises)
    linear_io: int = 0  # sum(in + out) over its Linears: activation bytes per token / dtype
    lora_params_per_rank: int = 0  # sum(in + out) over the Linears LoRA wraps
    layers: int = 1
    hidden: int = 0


def meta_model(family, config):
    """The family's model built from `config` on the meta device: shapes only, no memory."""
    from transformers.initialization import no_init_weights

    cls = family.get_model_class()
    with torch.device("meta"), no_init_weights():  # no initialiser runs: seconds for a 7B model
        if hasattr(cls, "from_config"):  # an Auto class
            return cls.from_config(config)
        return cls._from_config(config)


@lru_cache(maxsize=8)
def meta_of(family_name: str, base_model: str):
    """(config, meta model) of a base, cached: the launch form asks for estimates while typing."""
    from worker.families import get_family

    config = load_config(base_model)
    return config, meta_model(get_family(family_name), config)


def _matches(name: str, wanted) -> bool:
    return any(name == w or name.endswith("." + w) for w in wanted)


def count_parts(family, model, targets: list[str] | str = "all-linear") -> dict[str, PartCount]:
    ids = {"vision": {id(p) for p in family.vision_params(model)},
           "projector": {id(p) for p in family.projector_params(model)},
           "language": {id(p) for p in family.language_params(model)}}
    out = {p: PartCount() for p in PARTS}
    for p in model.parameters():
        for part in PARTS:
            if id(p) in ids[part]:
                out[part].params += p.numel()
                break
    wanted = set(family.lora_target_modules(model)) if targets == "all-linear" else None
    for name, m in model.named_modules():
        if not isinstance(m, torch.nn.Linear) or name.endswith("lm_head"):
            continue
        part = next((q for q in PARTS if id(m.weight) in ids[q]), None)
        if part is None:
            continue
        c = out[part]
        c.linear_params += m.weight.numel()
        c.linear_io += m.in_features + m.out_features
        if (name in wanted) if wanted is not None else _matches(name, targets):
            c.lora_params_per_rank += m.in_features + m.out_features
    tc = model.config.get_text_config()
    out["language"].layers, out["language"].hidden = tc.num_hidden_layers, tc.hidden_size
    vc = getattr(model.config, "vision_config", None)
    if vc is not None:
        out["vision"].layers = getattr(vc, "depth", None) or getattr(vc, "num_hidden_layers", 1)
        out["vision"].hidden = getattr(vc, "embed_dim", None) or vc.hidden_size
    return out


def image_tokens(family, config, width: int, height: int, max_pixels: int | None) -> tuple[int, int]:
    """(tokens the language model sees, patches the vision tower sees) for one image."""
    vc = config.vision_config
    if family.name in ("qwen2_vl", "qwen2_5_vl"):
        from worker.codecs import smart_resize

        patch, merge = vc.patch_size, vc.spatial_merge_size
        cap = min(max_pixels or 12845056, 12845056)
        h, w = smart_resize(height, width, patch * merge, 56 * 56, cap)
        n = (h // patch) * (w // patch)
        return n // merge ** 2, n
    n = (vc.image_size // vc.patch_size) ** 2
    if family.name == "smolvlm":  # tiles of image_size px plus the global view
        scale = getattr(config, "scale_factor", 1) or 1
        tiles = math.ceil(width / vc.image_size) * math.ceil(height / vc.image_size)
        tiles = 1 if tiles <= 1 else tiles + 1
        return tiles * n // scale ** 2, tiles * n
    return n, n


def load_config(base_model: str):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(base_model))


def estimate(family, config, *, method: str = "lora", bits: int = 4, compute_dtype: str = "auto",
             device: str = "cuda", batch_size: int = 4, rank: int = 8, target_modules="all-linear",
             freeze_vision: bool = True, freeze_projector: bool = False, freeze_language: bool = False,
             gradient_checkpointing: bool | str = "auto", max_pixels: int | None = None,
             image_size: tuple[int, int] = (1024, 768), text_tokens: int = 64, answer_tokens: int = 192,
             eval_batch_size: int = 8, max_new_tokens: int = 256, device_gb: float | None = None,
             model=None) -> dict:
    """Peak GPU memory of a run's training step and evaluation batch, in GB, with its parts."""
    model = model if model is not None else meta_model(family, config)
    counts = count_parts(family, model, target_modules)
    on_cuda = str(device).startswith("cuda")
    dt = resolve_dtype(compute_dtype, device)
    ab = BYTES[dt]
    ckpt = on_cuda if gradient_checkpointing == "auto" else bool(gradient_checkpointing)
    frozen = {"vision": freeze_vision, "projector": freeze_projector, "language": freeze_language}
    tc = config.get_text_config()
    vocab = tc.vocab_size
    # language_params already holds a separate lm_head; a meta model may not be tied yet although
    # the config ties it (then the real model has one matrix, not two)
    lm_head = model.get_output_embeddings()
    tie = getattr(config, "tie_word_embeddings", None)
    if tie is None:
        tie = getattr(tc, "tie_word_embeddings", False)
    if tie and lm_head is not None and lm_head.weight is not model.get_input_embeddings().weight:
        counts["language"].params -= lm_head.weight.numel()

    def weight_bytes(quant: bool, other_bytes: float) -> float:
        total = 0.0
        for c in counts.values():
            lin = c.linear_params
            wb = (0.5 + 4 / 64 + 0.01 if bits == 4 else 1 + 4 / 128) if quant else ab
            total += lin * wb + (c.params - lin) * other_bytes
        return total

    qlora = method == "qlora"
    weights = weight_bytes(qlora, 4 if qlora else ab)
    lora_params = sum(c.lora_params_per_rank * rank for p, c in counts.items() if not frozen[p])
    lora = lora_params * 16

    lm_tokens, vis_tokens = image_tokens(family, config, *image_size, max_pixels)
    seq = lm_tokens + text_tokens + answer_tokens
    tokens = {"language": batch_size * seq, "vision": batch_size * vis_tokens, "projector": batch_size * vis_tokens}
    on_path = {"language": True, "vision": not freeze_vision,
               "projector": not (freeze_vision and freeze_projector)}
    act = 0.0
    for part, c in counts.items():
        if not on_path[part] or not c.linear_io:
            continue
        full = 2 * c.linear_io * ab * tokens[part]
        if ckpt:
            act += c.layers * tokens[part] * max(c.hidden, 1) * ab + full / max(c.layers, 1)
        else:
            act += full
        if not on_cuda and part == "language" and tc.model_type != "llama":
            # CPU attention keeps (heads x seq x seq) probabilities per layer: its SDPA takes the
            # math kernel with the explicit masks of Gemma 2 (prefix-LM, eager) and Qwen (M-RoPE);
            # a Llama's plain causal mask gets the flash kernel. 1.5 copies, calibrated by
            # bench/bench_memory.py. On CUDA the flash / memory-efficient kernels keep no such matrix.
            heads = tc.num_attention_heads
            act += (1 if ckpt else c.layers) * batch_size * heads * seq * seq * ab * 1.5
    # per answer position x vocabulary: the head's output, its fp32 copy (none in fp32), the
    # log-softmax kept for backward; Gemma 2's final-logit soft-capping keeps three more copies
    softcap = 3 * ab if getattr(tc, "final_logit_softcapping", None) else 0
    logits = batch_size * answer_tokens * vocab * (ab + (4 if ab < 4 else 0) + 4 + softcap)
    train_peak = weights + lora + act + logits

    e_dtype, quant, _ = eval_precision(
        method, bits, "nf4", compute_dtype, device)
    eb = BYTES[e_dtype]
    eval_weights = weight_bytes(quant is not None, eb)
    kv_heads = getattr(tc, "num_key_value_heads", None) or tc.num_attention_heads
    head_dim = getattr(tc, "head_dim", None) or tc.hidden_size // tc.num_attention_heads
    eseq = lm_tokens + text_tokens + max_new_tokens
    kv = 2 * tc.num_hidden_layers * eval_batch_size * eseq * kv_heads * head_dim * eb
    lang = counts["language"]
    prefill = eval_batch_size * (lm_tokens + text_tokens) * (lang.linear_io / max(lang.layers, 1)) * eb * 2
    eval_peak = eval_weights + kv + prefill + eval_batch_size * vocab * 4 * 2

    peak = max(train_peak, eval_peak)
    total = peak * 1.1 + 0.6 * GB if on_cuda else peak
    parts = {"weights": weights / GB, "lora": lora / GB, "activations": act / GB, "logits": logits / GB,
             "train_step": train_peak / GB, "eval": eval_peak / GB}
    return {
        "estimate_gb": round(total / GB, 3),
        "parts": {k: round(v, 3) for k, v in parts.items()},
        "params": {p: c.params for p, c in counts.items()},
        "lora_params": lora_params,
        "seq_tokens": seq,
        "compute_dtype": dt,
        "gradient_checkpointing": ckpt,
        "device_gb": device_gb,
        "fits": None if device_gb is None else bool(total / GB <= device_gb),
    }


def device_gb(device: str) -> float | None:
    """Total memory of a CUDA device in GB (None on the CPU)."""
    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(torch.device(device)).total_memory / GB


def estimate_config(cfg, *, image_size: tuple[int, int] = (1024, 768), device: str = "cuda",
                    eval_batch_size: int = 8, max_new_tokens: int = 256, device_gb: float | None = None) -> dict:
    """estimate() for a TrainConfig (config.json read from cfg.base_model, nothing else loaded)."""
    from worker.families import get_family

    family = get_family(cfg.family)
    config, model = meta_of(cfg.family, str(cfg.base_model))
    return estimate(family, config, model=model, method=cfg.method, bits=cfg.bits,
                    compute_dtype=cfg.compute_dtype, device=device, batch_size=cfg.batch_size, rank=cfg.rank,
                    target_modules=cfg.target_modules, freeze_vision=cfg.freeze_vision,
                    freeze_projector=cfg.freeze_projector, freeze_language=cfg.freeze_language,
                    gradient_checkpointing=cfg.gradient_checkpointing, max_pixels=cfg.max_pixels,
                    image_size=image_size, eval_batch_size=eval_batch_size, max_new_tokens=max_new_tokens,
                    device_gb=device_gb)


class DoesNotFit(StudioMLError):
    """The run's estimated peak memory exceeds the device's."""


def check_fits(est: dict, device: str) -> None:
    """Refuse a run whose estimate exceeds its device, now, with the numbers (not an OOM later)."""
    if est.get("fits") is False:
        p = est["parts"]
        raise DoesNotFit(
            f"estimated peak {est['estimate_gb']:.1f} GB exceeds {device}'s {est['device_gb']:.1f} GB "
            f"(weights {p['weights']:.1f}, LoRA + optimizer {p['lora']:.1f}, activations {p['activations']:.1f}, "
            f"logits {p['logits']:.1f}, evaluation {p['eval']:.1f} GB): use QLoRA, a smaller batch_size, "
            "gradient_checkpointing, a lower max_pixels or a bigger GPU")
