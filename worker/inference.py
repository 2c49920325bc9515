"""Batched generation (left padding, KV cache, greedy by default) with a confidence per decoded box.

A box's score is the geometric mean of the probabilities of the tokens that produced its text
(exp of the mean log-probability over the tokens overlapping the box's character span), taken
from the raw logits `generate` returns. So AP can rank boxes; no constant 1.
"""
from __future__ import annotations

import math
from dataclasses import replace
from collections.abc import Callable

import torch
from PIL import Image

from worker.families.base import Family, load_images
from worker.types import BadImage, Prediction, Sample


def image_size(sample: Sample) -> tuple[int, int]:
    if isinstance(sample.image, Image.Image):
        return sample.image.size
    try:
        with Image.open(sample.image) as im:  # header only: no pixel decode
            return im.size
    except Exception:
        load_images([sample])  # raises BadImage with the usual message
        raise BadImage(f"image {sample.image} could not be read")


def _to_device(batch: dict, model) -> dict:
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    out = {}
    for k, v in batch.items():
        if torch.is_tensor(v):
            v = v.to(model.device)
            if v.is_floating_point():
                v = v.to(dtype if dtype in (torch.float16, torch.bfloat16, torch.float32) else torch.float32)
        out[k] = v
    return out


def token_char_ends(tokenizer, ids: list[int]) -> tuple[str, list[int]]:
    """Decoded text and, for each token, the end offset of its characters in that text (decoding
    prefixes keeps multi-byte characters and SentencePiece spaces right, unlike per-token decode)."""
    text = tokenizer.decode(ids, skip_special_tokens=False)
    ends, prev = [], 0
    for k in range(1, len(ids) + 1):
        n = len(tokenizer.decode(ids[:k], skip_special_tokens=False))
        prev = max(prev, min(n, len(text)))
        ends.append(prev)
    return text, ends


def span_score(logprobs: list[float], ends: list[int], start: int, end: int) -> float:
    """exp(mean log p) of the tokens whose characters overlap [start, end)."""
    chosen = [lp for k, lp in enumerate(logprobs) if (ends[k - 1] if k else 0) < end and ends[k] > start]
    if not chosen:
        return 1e-6
    return float(min(1.0, max(math.exp(sum(chosen) / len(chosen)), 1e-12)))


@torch.no_grad()
def predict(model, processor, family: Family, samples: list[Sample], *, batch_size: int = 8,
            max_new_tokens: int = 128, num_beams: int = 1, progress: Callable[[int, int], None] | None = None
            ) -> list[Prediction]:
    model.eval()
    tok = processor.tokenizer
    stops = family.stop_token_ids(processor)
    pad = tok.pad_token_id if tok.pad_token_id is not None else stops[0]
    # Similar prompt lengths together (less padding); results are put back in input order.
    order = sorted(range(len(samples)), key=lambda i: len(family.prompt(samples[i])))
    results: list[Prediction | None] = [None] * len(samples)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        chunk = [samples[i] for i in idx]
        batch = _to_device(family.build_batch(processor, chunk, train=False), model)
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=num_beams,
                             use_cache=True, eos_token_id=stops, pad_token_id=pad,
                             return_dict_in_generate=True, output_logits=True)
        gen = out.sequences[:, batch["input_ids"].shape[1]:]
        # log p of each chosen token under the model's raw distribution
        logits = torch.stack(out.logits, dim=1).float()[:, :gen.shape[1]]
        chosen_lp = torch.log_softmax(logits, -1).gather(-1, gen[:, :logits.shape[1], None])[..., 0]
        for row, (i, s) in enumerate(zip(idx, chunk)):
            ids = gen[row].tolist()
            n = next((k for k, t in enumerate(ids) if t in stops), len(ids))
            ids, lps = ids[:n], chosen_lp[row, :n].tolist()
            text, ends = token_char_ends(tok, ids)
            pred = Prediction(image_id=s.image_id, task=s.task, text=text)
            if s.task == "detect":
                w, h = image_size(s)
                pred.boxes = [replace(sp.box, score=span_score(lps, ends, sp.start, sp.end))
                              for sp in _spans(family, text, w, h, s.classes)]
            else:
                pred.answer = text.strip()
            results[i] = pred
        if progress:
            progress(min(start + batch_size, len(order)), len(order))
    return results  # type: ignore[return-value]


def _spans(family: Family, text: str, w: int, h: int, classes: list[str]):
    try:
        return family.decode_spans(text, w, h, classes)
    except Exception:  # decoders do not raise; model output must never crash a prediction run
        return []
