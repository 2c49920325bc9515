"""How many tokens a generation may take: `max_new_tokens: auto`.

A flat 128 cuts answers short: Qwen's tokenizers write every digit as its own token, so a
Qwen2.5-VL object costs ~32 tokens and a Qwen2-VL one ~24, and 128 tokens hold 4-6 objects. The
auto budget is measured with the loaded (real) tokenizer on a worst-case box (every coordinate
with the most digits the image size allows, the longest class name) and scaled by the most
objects of any image to decode, plus two spare objects and the fixed overhead of the answer.
"""
from __future__ import annotations

from worker.types import Box, Sample

SPARE_OBJECTS = 2
OVERHEAD = 8  # stop token, a trailing separator, a model's short preamble


def _n_tokens(processor, text: str) -> int:
    tok = getattr(processor, "tokenizer", processor)
    return len(tok(text, add_special_tokens=False)["input_ids"])


def worst_case_box(label: str, width: int, height: int) -> Box:
    # 0.9999 of the side: the most digits in every coordinate system (pixels, 0..999, bins)
    return Box(label, 0.8889 * width, 0.8889 * height, 0.9999 * width, 0.9999 * height)


def tokens_per_object(family, processor, classes: list[str], width: int, height: int) -> int:
    """Tokens one more object adds to a detection answer (its box, label and separator)."""
    label = max(classes or ["object"], key=lambda c: _n_tokens(processor, c))
    one = worst_case_box(label, width, height)
    k1 = _n_tokens(processor, family.encode_boxes([one], width, height))
    k2 = _n_tokens(processor, family.encode_boxes([one, one], width, height))
    return max(k2 - k1, k1)


def auto_max_new_tokens(family, processor, samples: list[Sample], sizes: list[tuple[int, int]], *,
                        min_objects: int = 0) -> int:
    """The budget for decoding `samples` (with their (width, height)): detection = tokens per
    object x (most objects of any image, at least min_objects, + SPARE_OBJECTS) + overhead; a VQA
    answer = its own reference length + overhead. The largest over all samples."""
    budget = OVERHEAD
    det = [(s, wh) for s, wh in zip(samples, sizes) if s.task == "detect"]
    if det:
        classes = sorted({c for s, _ in det for c in s.classes} | {b.label for s, _ in det for b in s.boxes})
        w = max(wh[0] for _, wh in det)
        h = max(wh[1] for _, wh in det)
        most = max([len(s.boxes) for s, _ in det] + [min_objects])
        per = tokens_per_object(family, processor, classes, w, h)
        budget = max(budget, per * (most + SPARE_OBJECTS) + _n_tokens(processor, family.encode_boxes([], w, h))
                     + OVERHEAD)
    for s, (w, h) in zip(samples, sizes):
        if s.task == "vqa":
            budget = max(budget, _n_tokens(processor, family.target_text(s, w, h)) + OVERHEAD)
    return budget
