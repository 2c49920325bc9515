"""Race (SuperTuxKart meta): the ego kart's position among the karts in view, which kart in view
is furthest ahead, and (option `overall`) its position in the whole race and the race leader.

Distances down the track come from the meta's `kart_distances` (per kart id, SuperTuxKart import)
or a box attribute `distance_down_track`; the ego's from the meta's `distance_down_track`.
"""
from __future__ import annotations

import random

from backend.qa.base import ImageView, Obj, QAItem

DEFAULTS = {"position": True, "leader": True, "overall": True}


def _ddt(view: ImageView, o: Obj) -> float | None:
    d = o.attributes.get("distance_down_track")
    if d is None:
        kid, table = o.attributes.get("kart_id"), view.meta.get("kart_distances")
        if isinstance(kid, int) and isinstance(table, list) and 0 <= kid < len(table):
            d = table[kid]
    return float(d) if isinstance(d, (int, float)) and not isinstance(d, bool) else None


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def generate(view: ImageView, rng: random.Random, opts: dict) -> list[QAItem]:
    out: list[QAItem] = []
    ego, meta = view.ego, view.meta
    in_view = [(o, d) for o in view.objs if o.name and (d := _ddt(view, o)) is not None]
    ego_d = meta.get("distance_down_track")
    if ego is not None and ego.obj is not None and (d := _ddt(view, ego.obj)) is not None:
        ego_d = d
    if opts["position"] and ego is not None and isinstance(ego_d, (int, float)):
        others = [(o, d) for o, d in in_view if o is not ego.obj]
        if others:
            pos = 1 + sum(1 for _, d in others if d > ego_d)
            out.append(QAItem("position_in_view",
                              "Counting the ego kart and the karts in view, what is the ego kart's race position?",
                              _ordinal(pos), [o.ref() for o, _ in others],
                              {"ego_distance": ego_d, "karts": len(others) + 1}))
    if opts["leader"] and len(in_view) >= 2:
        best = max(d for _, d in in_view)
        leaders = [o for o, d in in_view if d == best]
        if len(leaders) == 1:
            out.append(QAItem("leader_in_view", "Which kart in view is furthest ahead in the race?",
                              leaders[0].name, [leaders[0].ref()]))
    if opts["overall"]:
        pos, n = meta.get("race_position"), meta.get("num_karts")
        if isinstance(pos, int) and not isinstance(pos, bool) and pos >= 1:
            ans = f"{_ordinal(pos)} of {n}" if isinstance(n, int) and n >= pos else _ordinal(pos)
            out.append(QAItem("position_overall", "What is the ego kart's position in the race?", ans))
        if isinstance(meta.get("leader"), str) and meta["leader"]:
            out.append(QAItem("leader_overall", "Which kart is leading the race?", meta["leader"]))
    return out
