"""Views of real SuperTuxKart frames (read by the real format reader) and hand-made images."""
from __future__ import annotations

import json
import random

from backend.config import Settings
from backend.formats.base import DirSource, MemorySource
from backend.importer import parse
from backend.qa import FAMILIES, resolve_options
from backend.qa.base import ImageView, Obj
from tests.formats.helpers import STK_DATA

ALL = list(FAMILIES)


def view_of(im, labels=("kart",)) -> ImageView:
    return ImageView(im.file_name, im.width, im.height, im.meta,
                     [Obj(b.label, b.x1, b.y1, b.x2, b.y2, b.attributes) for b in im.boxes], list(labels))


def stk_views(drop_ego_ids: bool = False) -> dict[str, ImageView]:
    """{gid: view} of the three frames in tests/data/stk."""
    if drop_ego_ids:
        files = {}
        for p in STK_DATA.rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                if p.name.endswith("_info.json"):
                    info = json.loads(data)
                    info.pop("ego_ids")
                    data = json.dumps(info).encode()
                files[str(p.relative_to(STK_DATA))] = data
        src = MemorySource(files)
    else:
        src = DirSource(STK_DATA)
    ds = parse("supertuxkart", src, Settings())
    return {im.file_name.split("/")[-1][:5]: view_of(im) for im in ds.images}


def run(family: str, view: ImageView, seed: int = 0, negatives_ratio: float = 0.5, **opts):
    rng = random.Random(f"{seed}|{family}|{view.file_name}")
    return FAMILIES[family].generate(view, rng, resolve_options(family, opts, negatives_ratio))


def answers(items, template_id: str) -> dict[str, str]:
    """{question: answer} of one template."""
    return {it.question: it.answer for it in items if it.template_id == template_id}


def scaled(view: ImageView, s: float) -> ImageView:
    return ImageView(view.file_name, round(view.width * s), round(view.height * s), view.meta,
                     [Obj(o.label, o.x1 * s, o.y1 * s, o.x2 * s, o.y2 * s, o.attributes) for o in view.objs],
                     view.labels)
