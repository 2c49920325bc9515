"""Copy-paste composites for detection pre-training (Ghiasi et al. 2021, "Simple Copy-Paste").

Why: the demo's held-out tracks film the race leader, so the other karts there are near the camera,
large (37-131 px at a 224 px input) and behind the followed kart, while the pre-training tracks
film kart 0 in the pack: their other karts are mostly far ahead and small. A model pre-trained on
those frames alone finds 18 of the 45 near karts zero-shot (5 after the demo's fine-tune). Pasting
real kart crops at any size and place, with the box that goes with them, shows it large karts
anywhere in the frame, so it has to find a kart by its pixels, not by where karts usually are.

No masks exist for these frames, so a paste is the box's rectangle (the kart and a little road); a
labelled box that the paste covers by more than half is dropped (it is no longer what one sees).

Measured (README, "The offline demo"): with half the detection samples pasted, zero-shot AP50 on
the demo's train tracks rose from 0.280 to 0.402, but the held-out AP50 after the fine-tune fell
(0.48 against 0.55), so the shipped recipe leaves it off (Recipe.paste = 0).
"""
from __future__ import annotations

import dataclasses
import math
import random

from worker.types import Box, Sample


@dataclasses.dataclass
class CropBank:
    """Crops (PIL images) of labelled objects big enough to be seen when enlarged, with labels."""
    crops: list = dataclasses.field(default_factory=list)
    labels: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def from_samples(cls, samples: list[Sample], min_side: float = 24.0, limit: int = 3000,
                     seed: int = 0) -> CropBank:
        """Every box of the detection samples whose longer side is at least `min_side` source
        pixels (a smaller one is a blur when enlarged), at most `limit` of them (seeded draw)."""
        picks = [(s, b) for s in samples if s.task == "detect" for b in s.boxes
                 if max(b.x2 - b.x1, b.y2 - b.y1) >= min_side]
        picks = random.Random(seed).sample(picks, min(limit, len(picks)))
        bank = cls()
        for s, b in picks:
            bank.crops.append(s.load_image().crop((round(b.x1), round(b.y1), round(b.x2), round(b.y2))))
            bank.labels.append(b.label)
        return bank

    def __len__(self) -> int:
        return len(self.crops)


def paste(s: Sample, bank: CropBank, rng: random.Random, n: int = 2, size: tuple[float, float] = (0.1, 0.6),
          aspect: float = 0.2, outside: float = 0.3, zoom: float = 3.0) -> Sample:
    """`s` (a detection sample) with 1..n crops of `bank` pasted on a copy of its image: each
    crop's longer side `size` of the image width (uniform; at most `zoom` times the crop's: more
    is a blur no real frame shows), its width/height ratio jittered by up to exp(+-aspect),
    placed anywhere with up to `outside` of it past the frame's edge (near karts are cut by the
    frame too); its box (clipped to the frame) added. The input is not changed."""
    if s.task != "detect" or not len(bank):
        return s
    image = s.load_image().copy()
    w, h = image.size
    boxes = list(s.boxes)
    for _ in range(rng.randint(1, n)):
        k = rng.randrange(len(bank))
        crop = bank.crops[k]
        cw, ch = crop.size
        ratio = cw / ch * math.exp(rng.uniform(-aspect, aspect))
        side = min(rng.uniform(*size) * w, zoom * max(cw, ch))
        pw, ph = (side, side / ratio) if ratio >= 1 else (side * ratio, side)
        pw, ph = max(2, round(pw)), max(2, round(ph))
        x0 = rng.randint(-round(outside * pw), w - pw + round(outside * pw))
        y0 = rng.randint(-round(outside * ph), h - ph + round(outside * ph))
        image.paste(crop.resize((pw, ph)), (x0, y0))
        new = Box(bank.labels[k], max(0, x0), max(0, y0), min(w, x0 + pw), min(h, y0 + ph))
        boxes = [b for b in boxes if covered(b, new) <= 0.5] + [new]
    return dataclasses.replace(s, image=image, boxes=boxes)


def covered(b: Box, top: Box) -> float:
    """The share of `b`'s area under `top`."""
    iw = max(0.0, min(b.x2, top.x2) - max(b.x1, top.x1))
    ih = max(0.0, min(b.y2, top.y2) - max(b.y1, top.y1))
    area = (b.x2 - b.x1) * (b.y2 - b.y1)
    return iw * ih / area if area > 0 else 1.0
