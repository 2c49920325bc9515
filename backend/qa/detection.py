"""Detection: the whole-image detection target as one pair, so one run can mix detection and QA.

`params.task` is "detect" and `params.classes` the project's labels: a training run turns this pair
into a detection sample (prompt from the classes, target = `params.boxes`) in the family's own
syntax. The answer lists the boxes as placeholders (`{box0} ; {box1}`); an image without boxes is
a detection negative with the answer "" (option `include_empty`).
"""
from __future__ import annotations

import random

from backend.qa.base import ImageView, QAItem

DEFAULTS = {"include_empty": True}


def generate(view: ImageView, rng: random.Random, opts: dict) -> list[QAItem]:
    if not view.objs and not opts["include_empty"]:
        return []
    classes = list(view.labels) or sorted({o.label for o in view.objs})
    if not classes:
        return []
    objs = sorted(view.objs, key=lambda o: (o.y1, o.x1))  # reading order: a stable target
    answer = " ; ".join("{box%d}" % i for i in range(len(objs)))
    return [QAItem("detect", f"Detect every object of these classes: {', '.join(classes)}.", answer,
                   [o.ref() for o in objs], {"task": "detect", "classes": classes})]
