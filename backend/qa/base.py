"""Neutral types the question families share: what a family sees of an image, what it returns.

Storage convention (family-neutral): `question` and `answer` may hold `{box0}`, `{box1}` ...
placeholders. `params["boxes"]` lists every box or region the pair refers to, in order, as
`{"label", "x1", "y1", "x2", "y2"}` in pixels of the original image (a region has label
"region"); placeholder `{boxN}` is `params["boxes"][N]`. A model family's codec fills the
placeholders in its own syntax at training time (worker.codecs.fill_answer does it for answers,
and must do the same for questions). `render()` makes the plain-text form shown to people.

Everything a family decides is in relative terms (fractions of the image side, comparisons of
centres), and its random draws are in relative units, so a resized image gives the same answers
and the regions scale with it.
"""
from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

REGION = "region"


@dataclass(frozen=True)
class Obj:
    """One box of the image, valid (finite, positive area); `name` is a kart name when known."""

    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    attributes: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str | None:
        n = self.attributes.get("kart_name")
        return n if isinstance(n, str) and n.strip() else None

    @property
    def cx(self) -> float:
        return (self.x1 + self.x2) / 2

    @property
    def cy(self) -> float:
        return (self.y1 + self.y2) / 2

    @property
    def area(self) -> float:
        return (self.x2 - self.x1) * (self.y2 - self.y1)

    def ref(self) -> dict:
        """The box as params store it; one dict per object, shared by its pairs (do not mutate)."""
        return self._ref

    @cached_property
    def _ref(self) -> dict:  # cached_property writes __dict__ directly, so a frozen dataclass is fine
        return box_ref(self.label, self.x1, self.y1, self.x2, self.y2)


def box_ref(label: str, x1: float, y1: float, x2: float, y2: float) -> dict:
    return {"label": label, "x1": round(x1, 2), "y1": round(y1, 2), "x2": round(x2, 2), "y2": round(y2, 2)}


def valid_box(x1, y1, x2, y2) -> bool:
    """Finite with positive width and height: a zero-area box refers to nothing and gets no pair."""
    try:
        c = [float(v) for v in (x1, y1, x2, y2)]
    except (TypeError, ValueError):
        return False
    return all(math.isfinite(v) for v in c) and c[2] > c[0] and c[3] > c[1]


@dataclass
class Ego:
    name: str | None
    obj: Obj | None  # its box when it is in the picture
    x: float  # the reference point for "left of / in front of the ego kart":
    y: float  # its box centre, else the image's bottom centre (the camera trails it)


@dataclass
class ImageView:
    """What a family sees of one image: size, meta, valid boxes, and the project's label names."""

    file_name: str
    width: int
    height: int
    meta: dict
    objs: list[Obj]
    labels: list[str] = field(default_factory=list)
    id: int | None = None

    @cached_property
    def named(self) -> list[tuple[str, Obj]]:
        """Objects a question can name unambiguously: a kart name (unique in the image), else
        `the <label>` when it is the only object of its label."""
        by_name: dict[str, list[Obj]] = {}
        by_label: dict[str, list[Obj]] = {}
        for o in self.objs:
            by_label.setdefault(o.label, []).append(o)
            if o.name:
                by_name.setdefault(o.name, []).append(o)
        out = [(n, os[0]) for n, os in by_name.items() if len(os) == 1]
        out += [(f"the {lab}", os[0]) for lab, os in by_label.items() if len(os) == 1 and not os[0].name]
        return out

    @cached_property
    def ego(self) -> Ego | None:
        """The ego kart: the meta's ego id/name (SuperTuxKart import), else the kart box nearest the
        image centre (the course's rule) when boxes carry kart names; None for other images."""
        m = self.meta
        obj = None
        name = m.get("ego_kart_name") if isinstance(m.get("ego_kart_name"), str) else None
        eid = m.get("ego_kart_id")
        if isinstance(eid, int) and not isinstance(eid, bool):
            obj = next((o for o in self.objs if o.attributes.get("kart_id") == eid), None)
        elif name:
            obj = next((o for o in self.objs if o.name == name), None)
        elif any(o.name for o in self.objs):
            obj = min((o for o in self.objs if o.name),
                      key=lambda o: math.hypot(o.cx - self.width / 2, o.cy - self.height / 2))
        if obj is not None and obj.name:
            name = name or obj.name
        if name is None and obj is None:
            return None
        if obj is not None:
            return Ego(name, obj, obj.cx, obj.cy)
        return Ego(name, None, self.width / 2, float(self.height))


@dataclass
class QAItem:
    template_id: str
    question: str
    answer: str
    boxes: list[dict] = field(default_factory=list)  # what {boxN} refers to, plus other referenced boxes
    extra: dict = field(default_factory=dict)  # anything else the template used

    def params(self) -> dict:
        return {"boxes": self.boxes, **self.extra}


Generate = Callable[[ImageView, random.Random, dict], list[QAItem]]


@dataclass(frozen=True)
class Family:
    """A question family: `generate(view, rng, options)` and its option defaults. `options` always
    holds every key of `defaults` (the caller's values over the defaults) plus `negatives_ratio`."""

    generate: Generate
    defaults: dict


_PH = re.compile(r"\{box(\d+)\}")


def render(text: str, boxes: list[dict]) -> str:
    """Plain-text rendering for people: `{boxN}` -> `kart [x1, y1, x2, y2]` (a region: just the box)."""

    def one(m: re.Match) -> str:
        i = int(m.group(1))
        if i >= len(boxes):
            return m.group(0)
        b = boxes[i]
        coords = "[" + ", ".join(str(round(float(b[k]))) for k in ("x1", "y1", "x2", "y2")) + "]"
        return coords if b.get("label") == REGION else f"{b.get('label')} {coords}"

    return _PH.sub(one, text)


def plural(label: str) -> str:
    if re.search(r"(s|x|z|ch|sh)$", label):
        return label + "es"
    if re.search(r"[^aeiou]y$", label):
        return label[:-1] + "ies"
    return label + "s"


def stochastic_round(x: float, rng: random.Random) -> int:
    """floor(x) plus one with probability frac(x): the expected count is exactly x."""
    n = math.floor(x)
    return n + (1 if rng.random() < x - n else 0)


def side(a: float, b: float, tol: float) -> int:
    """-1 if a < b by more than tol, +1 if a > b by more than tol, 0 for a tie (no question)."""
    return -1 if a < b - tol else (1 if a > b + tol else 0)
