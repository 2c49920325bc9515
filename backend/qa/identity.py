"""Identity: the ego kart's name, what is in a given box, the track's name (from the meta)."""
from __future__ import annotations

import random

from backend.qa.base import ImageView, QAItem

DEFAULTS = {
    "ego_name": True,
    "ego_name_needs_box": False,  # True: ask for the ego's name only when its kart is in the picture
    "max_boxes": 3,  # "what is in the box" questions per image
    "track": True,
}


def generate(view: ImageView, rng: random.Random, opts: dict) -> list[QAItem]:
    out: list[QAItem] = []
    ego = view.ego
    if opts["ego_name"] and ego is not None and ego.name and (ego.obj is not None or not opts["ego_name_needs_box"]):
        boxes = [ego.obj.ref()] if ego.obj is not None else []
        out.append(QAItem("ego_name", "What is the name of the ego kart?", ego.name, boxes,
                          {"ego_detected": ego.obj is not None}))
    objs = list(view.objs)
    for o in rng.sample(objs, min(opts["max_boxes"], len(objs))):
        out.append(QAItem("box_content", "What is in the box {box0}?", o.name or o.label, [o.ref()]))
    track = view.meta.get("track")
    if opts["track"] and isinstance(track, str) and track.strip():
        out.append(QAItem("track", "Which track is this?", track))
    return out
