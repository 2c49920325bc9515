"""Pooling an adapter's boxes with its base model's: the output-space ensemble of a fine-tune and the
model it started from (Wortsman et al. 2022, "Robust fine-tuning of zero-shot models", which
ensembles the two in output space as well as in weight space to keep the base's robustness to
data the fine-tune never saw).

Why a studio needs it: a short LoRA fine-tune on frames that mostly show one object teaches a
generative detector to stop after its first box, and it forgets objects the base still finds. On
the demo's held-out tracks the base found 18 of the 45 karts beside the followed one and the
fine-tune 6 (README, "The offline demo"); pooled, the run keeps the fine-tune's followed karts and
the base's near ones. The price is precision: the base's wrong boxes come too.

The pool: both models' boxes of an image, per label, greedy non-maximum suppression at IoU 0.5 on
their own scores (no weight between the two models to tune). Greedy NMS is a dozen lines over
worker.metrics.iou_matrix; torchvision's does not import beside the pinned CPU torch here, and
ensemble-boxes pulls numba and pandas for the same loop.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from worker.metrics import box_score, boxes_array, iou_matrix
from worker.types import Box, Prediction

IOU = 0.5  # the IoU at which two boxes are one object (COCO's AP50 threshold)


def nms(boxes: list[Box], iou: float = IOU) -> list[Box]:
    """Per label, keep the highest-scoring box and drop every box overlapping a kept one by `iou`
    or more (one object at AP50); the result is ordered by score, highest first (a box without a
    score counts as 1, as in worker.metrics)."""
    by_label: dict[str, list[Box]] = defaultdict(list)
    for b in boxes:
        by_label[b.label].append(b)
    kept: list[Box] = []
    for same in by_label.values():
        same = sorted(same, key=box_score, reverse=True)
        mine: list[Box] = []
        for b in same:
            if not mine or iou_matrix(boxes_array([b]), boxes_array(mine)).max() < iou:
                mine.append(b)
        kept += mine
    return sorted(kept, key=box_score, reverse=True)


def pool(adapter: list[Prediction], base: list[Prediction], iou: float = IOU) -> list[Prediction]:
    """The adapter's detection predictions with the base's boxes of the same images pooled in
    (nms over both); the adapter's raw text is kept. Both lists are in the same sample order."""
    if len(adapter) != len(base):
        raise ValueError(f"pool: {len(adapter)} adapter predictions against {len(base)} base predictions")
    out = []
    for a, b in zip(adapter, base):
        if a.image_id != b.image_id:
            raise ValueError(f"pool: image {a.image_id} of the adapter against image {b.image_id} of the base")
        out.append(replace(a, boxes=nms(list(a.boxes) + list(b.boxes), iou)))
    return out
