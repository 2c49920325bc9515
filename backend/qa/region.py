"""Region questions (seed 002): "What is in the region {box0}?" about a region drawn to
- fully contain one object (`kart`),
- partly contain one (`kart (40% visible)`: the object's area inside the region over its whole
  area, rounded to 10 %), or
- contain none (a negative: `nothing`).

The answer names every object the region holds, not only the one it was drawn around: whole ones
by label, cut ones as `label (N% visible)`, whole ones first, then by share (an object with less
than 5 % inside rounds to 0 % and is left out). Per image:
`count` positive questions (a share `partial` of them partial), plus negatives_ratio x count
negatives (stochastically rounded). Drawn in fractions of the image side, so regions scale with
the image; stored in pixels.
"""
from __future__ import annotations

import random

from backend.qa.base import REGION, ImageView, QAItem, box_ref, stochastic_round

DEFAULTS = {"count": 2, "partial": 0.5, "margin": 0.1, "min_size": 0.05, "max_size": 0.4, "tries": 20}
QUESTION = "What is in the region {box0}?"

Rect = tuple[float, float, float, float]


def _overlap(a: Rect, b: Rect) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _clamp(r: Rect) -> Rect:
    return (max(0.0, r[0]), max(0.0, r[1]), min(1.0, r[2]), min(1.0, r[3]))


def _pct(r: Rect, o: Rect) -> int:
    """Share of o inside r, rounded to 10 % (half up)."""
    return int(_overlap(r, o) / ((o[2] - o[0]) * (o[3] - o[1])) * 10 + 0.5) * 10


def _full(t: Rect, rng: random.Random, opts: dict) -> Rect:
    m = opts["margin"]
    return _clamp((t[0] - rng.uniform(0, m), t[1] - rng.uniform(0, m), t[2] + rng.uniform(0, m), t[3] + rng.uniform(0, m)))


def _partial(t: Rect, rng: random.Random, opts: dict) -> Rect | None:
    """Cut the object at a fraction f (0.15..0.85) of its width or height from one side."""
    w, h = t[2] - t[0], t[3] - t[1]
    for _ in range(opts["tries"]):
        f = rng.uniform(0.15, 0.85)
        s = rng.randrange(4)
        m = [rng.uniform(0, opts["margin"]) for _ in range(3)]
        if s == 0:    # left part
            r = (t[0] - m[0], t[1] - m[1], t[0] + f * w, t[3] + m[2])
        elif s == 1:  # right part
            r = (t[2] - f * w, t[1] - m[1], t[2] + m[0], t[3] + m[2])
        elif s == 2:  # top part
            r = (t[0] - m[1], t[1] - m[0], t[2] + m[2], t[1] + f * h)
        else:         # bottom part
            r = (t[0] - m[1], t[3] - f * h, t[2] + m[2], t[3] + m[0])
        r = _clamp(r)
        if 10 <= _pct(r, t) <= 90:
            return r
    return None


def _empty(objs: list[Rect], rng: random.Random, opts: dict) -> Rect | None:
    for _ in range(opts["tries"]):
        w, h = rng.uniform(opts["min_size"], opts["max_size"]), rng.uniform(opts["min_size"], opts["max_size"])
        x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        r = (x, y, x + w, y + h)
        if not any(_overlap(r, o) for o in objs):
            return r
    return None


def generate(view: ImageView, rng: random.Random, opts: dict) -> list[QAItem]:
    W, H = view.width, view.height
    rects = [(o.x1 / W, o.y1 / H, o.x2 / W, o.y2 / H) for o in view.objs]

    def item(kind: str, r: Rect) -> QAItem:
        inside = sorted(((p, i) for i, o in enumerate(rects) if (p := _pct(r, o)) >= 10), key=lambda pi: (-pi[0], pi[1]))
        objs = [view.objs[i] for _, i in inside]
        answer = ", ".join(o.label if p == 100 else f"{o.label} ({p}% visible)" for (p, _), o in zip(inside, objs))
        return QAItem(f"region_{kind}", QUESTION, answer or "nothing",
                      [box_ref(REGION, r[0] * W, r[1] * H, r[2] * W, r[3] * H)] + [o.ref() for o in objs],
                      {"kind": kind, "visible_shares": [p / 100 for p, _ in inside]})

    out: list[QAItem] = []
    if view.objs:
        for _ in range(opts["count"]):
            i = rng.randrange(len(view.objs))
            if rng.random() < opts["partial"]:
                r = _partial(rects[i], rng, opts)
                if r is not None:
                    out.append(item("partial", r))
            else:
                out.append(item("full", _full(rects[i], rng, opts)))
    for _ in range(stochastic_round(opts["negatives_ratio"] * max(1, opts["count"]), rng)):
        r = _empty(rects, rng, opts)
        if r is not None:
            out.append(item("none", r))
    return out
