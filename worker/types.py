"""Plain data the ML core takes and returns: no database, no HTTP.

Box coordinates are always absolute pixels of the original image, x1 y1 x2 y2; each family's
codec converts to and from its own native box syntax.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image

Task = Literal["detect", "vqa"]


@dataclass(frozen=True)
class Box:
    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    score: float | None = None
    known: bool = True  # False when a decoded label is not one of the requested classes


@dataclass
class Sample:
    """One training / evaluation example.

    detect: `classes` are the prompt's classes, `boxes` the target.
    vqa: `question` / `answer` (answer may hold boxes rendered by the family: `boxes` are then
    the pixel boxes the answer refers to, in order, and `answer` uses `{box0}`, `{box1}` ...
    placeholders that the family's codec fills in its own syntax).
    """

    image: Image.Image | Path | str
    task: Task = "detect"
    classes: list[str] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    question: str | None = None
    answer: str | None = None
    qtype: str | None = None  # question family / template, for per-type VQA accuracy
    image_id: int | str | None = None
    template: str | None = None  # the question's template (a family's finer type), for its majority answer

    def load_image(self) -> Image.Image:
        if isinstance(self.image, Image.Image):
            return self.image.convert("RGB")
        with Image.open(self.image) as im:
            return im.convert("RGB")


@dataclass
class Prediction:
    image_id: int | str | None
    task: Task
    text: str  # raw generated text
    boxes: list[Box] = field(default_factory=list)  # decoded, scored
    answer: str | None = None  # for vqa


class StudioMLError(Exception):
    """Base of every error the ML core raises on bad input, before any training step."""


class ModelNotFound(StudioMLError):
    pass


class FamilyMismatch(StudioMLError):
    pass


class BadTargetModules(StudioMLError):
    pass


class BadImage(StudioMLError):
    pass


class EmptyDataset(StudioMLError):
    pass


class QuantizationUnavailable(StudioMLError):
    pass
