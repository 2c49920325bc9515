"""Batched generation (left padding, KV cache, greedy by default) with a confidence per decoded box.

A box's score is the geometric mean of the probabilities of the tokens that produced it (exp of the
mean log-probability over the tokens overlapping a character span). So AP can rank boxes; no
constant 1. Which span (`Span.scored`, worker.codecs): its coordinates when the prompt asked for one
class (the label is then no decision, and its spelling can carry another one: the demo's tokenizer
writes " kart" as one token before the end and as three before " ;", so its probability was
P(another box follows); measured on the demo's held-out tracks, AP50 0.409 -> 0.531 for the
pretrained base), else the box's whole text, the label's tokens being the class confidence. Only
the chosen token's log-probability is kept per step (a logits processor records it):
`output_logits=True` would hold every step's batch x vocabulary logits (150k-257k floats per row
per step) until generation ends.

Decoding is greedy whatever the checkpoint's generation_config.json says: GREEDY overrides every
option that changes the scores (Qwen2.5-VL-Instruct ships repetition_penalty=1.05, which bends
repeated coordinate digits).
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


# Explicit values for every generation option that reshapes the scores or the search; kwargs to
# generate() take precedence over the checkpoint's generation_config (transformers fills only the
# options left unset from it).
GREEDY = dict(do_sample=False, num_beams=1, num_beam_groups=None, temperature=None, top_k=None, top_p=None, min_p=None,
              typical_p=None, epsilon_cutoff=None, eta_cutoff=None, repetition_penalty=1.0,
              encoder_repetition_penalty=1.0, no_repeat_ngram_size=0, encoder_no_repeat_ngram_size=0,
              bad_words_ids=None, sequence_bias=None, min_length=0, min_new_tokens=None, suppress_tokens=None,
              begin_suppress_tokens=None, forced_bos_token_id=None, forced_eos_token_id=None,
              exponential_decay_length_penalty=None, renormalize_logits=False, guidance_scale=None,
              diversity_penalty=None, penalty_alpha=None, dola_layers=None, top_h=None, stop_strings=None,
              watermarking_config=None, prompt_lookup_num_tokens=None, constraints=None, force_words_ids=None,
              output_scores=False, output_logits=False, return_dict_in_generate=False)


class ChosenLogProb:
    """Logits processor, last in the list: records log p(argmax) per row and step, which under
    greedy decoding is the chosen token's log-probability. Keeps batch floats per step only."""

    def __init__(self):
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        s = scores.float()
        self.steps.append((s.max(-1).values - torch.logsumexp(s, -1)).cpu())
        return scores

    def logprobs(self) -> torch.Tensor:
        return torch.stack(self.steps, 1) if self.steps else torch.zeros(0, 0)


def generation_kwargs(model, max_new_tokens: int) -> dict:
    """GREEDY minus the options this transformers version does not know."""
    known = set(model.generation_config.to_dict()) | {"output_logits", "return_dict_in_generate", "min_p"}
    return {k: v for k, v in GREEDY.items() if k in known} | {"max_new_tokens": max_new_tokens}


@torch.no_grad()
def predict(model, processor, family: Family, samples: list[Sample], *, batch_size: int = 8,
            max_new_tokens: int = 128, progress: Callable[[int, int], None] | None = None
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
        rec = ChosenLogProb()
        from transformers import LogitsProcessorList

        seq = model.generate(**batch, **generation_kwargs(model, max_new_tokens), use_cache=True,
                             eos_token_id=stops, pad_token_id=pad, logits_processor=LogitsProcessorList([rec]))
        gen = seq[:, batch["input_ids"].shape[1]:]
        chosen_lp = rec.logprobs()
        for row, (i, s) in enumerate(zip(idx, chunk)):
            ids = gen[row].tolist()
            n = next((k for k, t in enumerate(ids) if t in stops), len(ids))
            ids, lps = ids[:n], chosen_lp[row, :n].tolist()
            text, ends = token_char_ends(tok, ids)
            pred = Prediction(image_id=s.image_id, task=s.task, text=text)
            if s.task == "detect":
                w, h = image_size(s)
                pred.boxes = [replace(sp.box, score=span_score(lps, ends, *sp.scored))
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
