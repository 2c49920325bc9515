"""Synthetic detection images: coloured shapes on a background, with exact boxes.

Used by the learning check (one object per image, a few classes) and reusable for the offline demo
(several objects per scene, e.g. kart-like shapes on a track-coloured background): everything is a
pure function of the seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from worker.types import Box, Sample


@dataclass(frozen=True)
class ShapeClass:
    label: str
    shape: str  # "square" | "circle" | "triangle" | "diamond"
    color: tuple[int, int, int]


DEFAULT_CLASSES = (
    ShapeClass("red square", "square", (220, 40, 40)),
    ShapeClass("blue circle", "circle", (40, 80, 230)),
    ShapeClass("green triangle", "triangle", (40, 190, 60)),
)


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[float, float, float, float], color) -> None:
    x1, y1, x2, y2 = box
    # PIL's shape coordinates are inclusive: draw to x2-1 so the filled pixels are exactly [x1, x2).
    xy = (x1, y1, x2 - 1, y2 - 1)
    if shape == "square":
        draw.rectangle(xy, fill=color)
    elif shape == "circle":
        draw.ellipse(xy, fill=color)
    elif shape == "triangle":
        draw.polygon([((x1 + x2 - 1) / 2, y1), (x2 - 1, y2 - 1), (x1, y2 - 1)], fill=color)
    elif shape == "diamond":
        cx, cy = (x1 + x2 - 1) / 2, (y1 + y2 - 1) / 2
        draw.polygon([(cx, y1), (x2 - 1, cy), (cx, y2 - 1), (x1, cy)], fill=color)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def _overlaps(a, b) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def random_scene(
    rng: np.random.Generator,
    size: tuple[int, int],
    classes: tuple[ShapeClass, ...] | list[ShapeClass] = DEFAULT_CLASSES,
    *,
    n_objects: int | tuple[int, int] = 1,
    min_frac: float = 0.2,
    max_frac: float = 0.5,
    background: tuple[int, int, int] | None = None,
    noise: float = 0.0,
    grid: int = 1,
) -> tuple[Image.Image, list[Box]]:
    """One image of `size` (w, h) with non-overlapping shapes; returns (image, pixel boxes).

    `grid` > 1 snaps corners to multiples of `grid` pixels: fewer distinct targets, an easier task
    (the learning check uses it so a tiny model learns in a few hundred steps)."""
    w, h = size
    bg = background if background is not None else tuple(int(v) for v in rng.integers(150, 256, 3))
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    k = n_objects if isinstance(n_objects, int) else int(rng.integers(n_objects[0], n_objects[1] + 1))
    placed: list[tuple[int, int, int, int]] = []
    boxes: list[Box] = []
    for _ in range(k):
        for _attempt in range(50):
            bw = int(rng.uniform(min_frac, max_frac) * w)
            bh = int(rng.uniform(min_frac, max_frac) * h)
            bw, bh = max(bw // grid * grid, grid, 2), max(bh // grid * grid, grid, 2)
            x1 = int(rng.integers(0, (w - bw) // grid + 1)) * grid
            y1 = int(rng.integers(0, (h - bh) // grid + 1)) * grid
            cand = (x1, y1, x1 + bw, y1 + bh)
            if not any(_overlaps(cand, p) for p in placed):
                break
        else:
            continue  # scene too crowded: fewer objects
        cls = classes[int(rng.integers(len(classes)))]
        draw_shape(draw, cls.shape, cand, cls.color)
        placed.append(cand)
        boxes.append(Box(cls.label, *map(float, cand)))
    if noise > 0:
        arr = np.asarray(img, dtype=np.float32) + rng.normal(0, noise, (h, w, 3))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img, boxes


def shape_samples(
    n: int,
    *,
    seed: int,
    size: tuple[int, int] = (224, 224),
    classes: tuple[ShapeClass, ...] | list[ShapeClass] = DEFAULT_CLASSES,
    n_objects: int | tuple[int, int] = 1,
    prompt_classes: list[str] | None = None,
    id_offset: int = 0,
    **scene_kwargs,
) -> list[Sample]:
    """`n` detection samples; the prompt asks for all classes (so absent classes are negatives)."""
    rng = np.random.default_rng(seed)
    names = prompt_classes or [c.label for c in classes]
    out = []
    for i in range(n):
        img, boxes = random_scene(rng, size, classes, n_objects=n_objects, **scene_kwargs)
        out.append(Sample(image=img, task="detect", classes=list(names), boxes=boxes, image_id=id_offset + i))
    return out
