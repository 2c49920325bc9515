"""Spatial: left/right by box-centre x, in front/behind by box-centre y (SuperTuxKart convention:
the smaller centre y is further ahead = "in front"), relative to the ego kart and between named
objects. The ego's reference point is its box centre when it is in the picture, else the image's
bottom centre. Ties closer than `min_gap` (a fraction of the image width / height) get no question.
"""
from __future__ import annotations

import itertools
import random

from backend.qa.base import ImageView, Obj, QAItem, side

DEFAULTS = {
    "ego": True,  # questions relative to the ego kart
    "max_objects": 4,  # objects asked about relative to the ego, per image
    "pairs": True,  # questions between two named objects
    "max_pairs": 3,
    "min_gap": 0.0,
    # False: one seeded template per object / pair (left-right, front-behind, or "where"), so spatial
    # questions do not outnumber the other families 3 to 1; True: every template that applies.
    "all_templates": False,
}


def _lr(o: Obj, x: float, view: ImageView, gap: float) -> str | None:
    s = side(o.cx, x, gap * view.width)
    return {-1: "left", 1: "right"}.get(s)


def _fb(o: Obj, y: float, view: ImageView, gap: float) -> str | None:
    s = side(o.cy, y, gap * view.height)
    return {-1: "front", 1: "behind"}.get(s)


def generate(view: ImageView, rng: random.Random, opts: dict) -> list[QAItem]:
    out: list[QAItem] = []
    gap = opts["min_gap"]
    ego = view.ego
    if opts["ego"] and ego is not None:
        others = [(n, o) for n, o in view.named if o is not ego.obj]
        for name, o in rng.sample(others, min(opts["max_objects"], len(others))):
            lr, fb = _lr(o, ego.x, view, gap), _fb(o, ego.y, view, gap)
            boxes = [o.ref()] + ([ego.obj.ref()] if ego.obj is not None else [])
            extra = {"object": name, "ego_detected": ego.obj is not None, "reference": [round(ego.x, 2), round(ego.y, 2)]}
            cands = []
            if lr:
                cands.append(QAItem("ego_left_right", f"Is {name} to the left or to the right of the ego kart?",
                                    lr, boxes, extra))
            if fb:
                cands.append(QAItem("ego_front_behind", f"Is {name} in front of or behind the ego kart?",
                                    "in front" if fb == "front" else "behind", boxes, extra))
            if lr or fb:
                cands.append(QAItem("ego_where", f"Where is {name} relative to the ego kart?",
                                    " and ".join(p for p in (fb, lr) if p), boxes, extra))
            out += _pick(cands, rng, opts)
    if opts["pairs"]:
        named = [(n, o) for n, o in view.named if ego is None or o is not ego.obj]
        pairs = list(itertools.combinations(named, 2))
        for (a, oa), (b, ob) in rng.sample(pairs, min(opts["max_pairs"], len(pairs))):
            if rng.random() < 0.5:
                (a, oa), (b, ob) = (b, ob), (a, oa)
            lr, fb = _lr(oa, ob.cx, view, gap), _fb(oa, ob.cy, view, gap)
            boxes, extra = [oa.ref(), ob.ref()], {"object": a, "reference": b}
            cands = []
            if lr:
                cands.append(QAItem("pair_left_right", f"Is {a} to the left or to the right of {b}?", lr, boxes, extra))
            if fb:
                cands.append(QAItem("pair_front_behind", f"Is {a} in front of or behind {b}?",
                                    "in front" if fb == "front" else "behind", boxes, extra))
            out += _pick(cands, rng, opts)
    return out


def _pick(cands: list[QAItem], rng: random.Random, opts: dict) -> list[QAItem]:
    if opts["all_templates"] or not cands:
        return cands
    return [cands[rng.randrange(len(cands))]]
