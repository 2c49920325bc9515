"""Training-time views of a sample (TrainConfig.augment, and the demo base's pre-training).

Detection samples: a random crop keeping `1 - crop` .. 100 % of each side (boxes cut to it; a box
left with under half its area is dropped, and a crop that would drop every box is not taken), then
a mirror half the time. A camera behind a kart puts it in the same place in every frame: crops
move it, so a model has to find it rather than learn where it usually is. Counting questions get
the mirror only (a crop could cut a kart out and change the answer); other questions neither
(left / right answers would flip, region questions name coordinates).

`colour_jitter` (the demo base's pre-training, `Recipe.colour`): brightness, contrast, saturation
and hue changed at random, sometimes grey. Each pre-training track has its own palette and follows
one driver, so a kart's colour is a per-track constant there; with the colours moved the cue left
is the kart's shape.
"""
from __future__ import annotations

import dataclasses
import random
from typing import Literal

from worker.types import Sample

Mode = Literal["none", "flip", "crop_flip"]
MIRROR_SAFE = ("count_",)  # question types whose answer a mirror image (or new colours) leaves unchanged


def _view_keeps_target(s: Sample) -> bool:
    """Whether a mirror or new colours leave `s`'s target true: detection (boxes move with the
    image) and counting; not a question that names a side or a kart."""
    return s.task == "detect" or (s.qtype or "").startswith(MIRROR_SAFE)


def augment(s: Sample, mode: Mode, rng: random.Random, crop: float = 0.5) -> Sample:
    """A random view of `s` (the input is not changed); `s` itself with mode "none"."""
    from PIL import ImageOps

    if mode == "none" or not _view_keeps_target(s):
        return s
    if s.task == "detect" and mode == "crop_flip" and crop > 0:
        s = random_crop(s, rng, crop)
    if rng.random() < 0.5:
        return s
    image = s.load_image()
    w = image.size[0]
    return dataclasses.replace(s, image=ImageOps.mirror(image),
                               boxes=[dataclasses.replace(b, x1=w - b.x2, x2=w - b.x1) for b in s.boxes])


def colour_jitter(s: Sample, rng: random.Random, strength: float) -> Sample:
    """`s` with its colours changed (boxes unchanged): brightness and contrast by up to
    ±40 % x strength, saturation by up to ±80 % x strength, hue turned by up to half a turn x
    strength, grey with probability 0.1 x strength. Only detection and counting samples (a
    question naming a kart may rest on its colour); `s` itself otherwise or with strength 0."""
    import numpy as np
    from PIL import Image, ImageEnhance

    if strength <= 0 or not _view_keeps_target(s):
        return s
    image = s.load_image().convert("RGB")
    for enhance, span in ((ImageEnhance.Brightness, 0.4), (ImageEnhance.Contrast, 0.4), (ImageEnhance.Color, 0.8)):
        image = enhance(image).enhance(1 + span * strength * rng.uniform(-1, 1))
    hsv = np.array(image.convert("HSV"))
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(128 * strength * rng.uniform(-1, 1))) % 256
    image = Image.fromarray(hsv, "HSV").convert("RGB")
    if rng.random() < 0.1 * strength:
        image = image.convert("L").convert("RGB")
    return dataclasses.replace(s, image=image)


def random_crop(s: Sample, rng: random.Random, crop: float) -> Sample:
    """Boxes keep their order (the caller orders them: TrainConfig.object_order)."""
    image = s.load_image()
    w, h = image.size
    f = 1 - crop * rng.random()
    cw, ch = max(8, round(w * f)), max(8, round(h * f))
    x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
    boxes = []
    for b in s.boxes:
        x1, y1, x2, y2 = max(b.x1, x0), max(b.y1, y0), min(b.x2, x0 + cw), min(b.y2, y0 + ch)
        if x2 > x1 and y2 > y1 and (x2 - x1) * (y2 - y1) >= 0.5 * (b.x2 - b.x1) * (b.y2 - b.y1):
            boxes.append(dataclasses.replace(b, x1=x1 - x0, y1=y1 - y0, x2=x2 - x0, y2=y2 - y0))
    if not boxes:
        return s
    return dataclasses.replace(s, image=image.crop((x0, y0, x0 + cw, y0 + ch)), boxes=boxes)
