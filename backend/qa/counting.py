"""Counting: objects of a class, all objects, and the per-class listing (`kart: 3`).

Negatives: classes of the project absent from the image ("How many bananas ...?" -> 0), about
`negatives_ratio` of them per class present (at least one chance on an empty image).
"""
from __future__ import annotations

import random
from collections import Counter

from backend.qa.base import ImageView, QAItem, plural, stochastic_round

DEFAULTS = {"per_class": True, "total": True, "listing": True}


def generate(view: ImageView, rng: random.Random, opts: dict) -> list[QAItem]:
    out: list[QAItem] = []
    counts = Counter(o.label for o in view.objs)
    if opts["per_class"]:
        for label in sorted(counts):
            out.append(QAItem("count_class", f"How many {plural(label)} are in the image?", str(counts[label]),
                              [o.ref() for o in view.objs if o.label == label], {"label": label}))
        absent = [lab for lab in view.labels if lab not in counts]
        n_neg = min(len(absent), stochastic_round(opts["negatives_ratio"] * max(1, len(counts)), rng))
        for label in sorted(rng.sample(absent, n_neg)):
            out.append(QAItem("count_class", f"How many {plural(label)} are in the image?", "0", [],
                              {"label": label, "negative": True}))
    if opts["total"] and (view.objs or view.labels):
        out.append(QAItem("count_total", "How many objects are in the image?", str(len(view.objs)),
                          [o.ref() for o in view.objs]))
    if opts["listing"] and counts:
        listing = ", ".join(f"{label}: {counts[label]}" for label in sorted(counts))
        out.append(QAItem("count_listing", "How many objects of each class are in the image?", listing,
                          [o.ref() for o in view.objs]))
    return out
