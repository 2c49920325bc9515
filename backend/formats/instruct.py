"""Detection as instruction data for training elsewhere (ms-swift, LLaMA-Factory): one conversation
per image, the user turn `<image>` + the family's detection prompt over the dataset's labels, the
answer the boxes in the family's own syntax (worker/codecs.py, torch-free, so the text is exactly
what the studio trains on). Shared by `msswift.py` and `llamafactory.py`, which only lay it out.

The prompts are the families' `detection_prompt` (worker/families/*, which import torch);
tests/formats/test_instruct.py checks every prefix here against them.
Read: the family is recognised from the prompt; the answer is decoded with its codec (clamped,
repeated boxes dropped, as the decoders do); an answer that is not empty but yields no box is
rejected. Splits are files: `train`, `val`, `test` (anything else: no split), images referenced
relative to the data file.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Callable

from backend.errors import InvalidInput
from backend.formats.base import Dataset, Format, ImageCtx, ParsedImage, Source, split_from_name
from worker import codecs
from worker.types import Box

IMAGE_TOKEN = "<image>"
UNSPLIT = "unsplit"


@dataclass(frozen=True)
class Syntax:
    prefix: str  # the detection prompt up to the class list
    sep: str  # between class names
    encode: Callable[[list[Box], int, int], str]
    decode: Callable[[str, int, int, list[str]], list]


def _qwen25_encode(boxes, w, h):
    return codecs.encode_qwen25(boxes, w, h, codecs.smart_resize(h, w))


def _qwen25_decode(text, w, h, classes):
    return codecs.decode_qwen25(text, w, h, classes, codecs.smart_resize(h, w))


FAMILIES: dict[str, Syntax] = {
    "qwen2_vl": Syntax("Detect all objects of these classes and output their bounding boxes: ", ", ",
                       codecs.encode_qwen2, codecs.decode_qwen2),
    "qwen2_5_vl": Syntax("Locate every object of these classes and output bbox coordinates in JSON format: ", ", ",
                         _qwen25_encode, _qwen25_decode),
    "paligemma": Syntax("detect ", " ; ", codecs.encode_paligemma, codecs.decode_paligemma),
    "smolvlm": Syntax("Detect all objects of these classes and give each as label [x1, y1, x2, y2] with "
                      "coordinates from 0 to 1000: ", ", ", codecs.encode_plain, codecs.decode_plain),
}
DEFAULT_FAMILY = "qwen2_vl"


def prompt(family: str, classes: list[str]) -> str:
    s = FAMILIES[family]
    return s.prefix + s.sep.join(classes)


def split_file(split: str | None) -> str:
    return split or UNSPLIT


@dataclass
class Record:
    """One conversation: the user text, the answer, the image reference."""
    user: str
    answer: str
    image: str


class InstructFormat(Format):
    """Subclasses lay records out (`dump`) and find them again (`load`)."""

    can_write = True
    family = DEFAULT_FAMILY

    def configured(self, family: str | None = None) -> Format:
        if not family:
            return self
        if family not in FAMILIES:
            raise InvalidInput(f"unknown model family {family!r}; use one of {sorted(FAMILIES)}")
        fmt = type(self)()
        fmt.family = family
        return fmt

    # ------------------------------------------------------------ layout, per tool
    def load(self, source: Source) -> list[tuple[str, list[tuple[str, object]]]]:
        """[(data file, [(where, record object)])]"""
        raise NotImplementedError

    def record(self, obj: object, where: str) -> Record:
        raise NotImplementedError

    def dump(self, records: dict[str, list[dict]], put) -> None:
        raise NotImplementedError

    def to_obj(self, rec: Record) -> dict:
        raise NotImplementedError

    # ------------------------------------------------------------ shared
    def read(self, source: Source, ctx: ImageCtx) -> Dataset:
        ds = Dataset()
        for df, objs in self.load(source):
            split = split_from_name(df)
            for where, obj in objs:
                rec = self.record(obj, where)
                ds.images.append(self._image(rec, where, df, split, source, ctx, ds))
        return ctx.finish(ds)

    def _image(self, rec: Record, where: str, df: str, split: str | None, source: Source, ctx: ImageCtx,
               ds: Dataset) -> ParsedImage:
        user = rec.user.replace(IMAGE_TOKEN, "", 1).strip() if IMAGE_TOKEN in rec.user else None
        if user is None:
            raise InvalidInput(f"{where}: the user turn has no {IMAGE_TOKEN} placeholder")
        fam = next((f for f, s in FAMILIES.items() if user.startswith(s.prefix)), None)
        if fam is None:
            raise InvalidInput(f"{where}: the user turn is not the detection prompt of a known family "
                               f"({', '.join(sorted(FAMILIES))}): {user[:80]!r}")
        syn = FAMILIES[fam]
        classes = [c.strip() for c in user[len(syn.prefix):].split(syn.sep.strip()) if c.strip()]
        for c in classes:
            if c not in ds.labels:
                ds.labels.append(c)
        found = source.find(rec.image, near=df, also=("images",))
        if found is None:
            raise InvalidInput(f"{where}: image file {rec.image!r} is not in the import")
        name = posixpath.normpath(posixpath.join(posixpath.dirname(df), rec.image.replace("\\", "/")))
        if name.startswith("images/"):
            name = name[len("images/"):]
        img = ctx.image(found, file_name=name, split=split)
        spans = syn.decode(rec.answer, img.width, img.height, classes)
        if rec.answer.strip() and not spans:
            raise InvalidInput(f"{where}: the answer holds no box in {fam} syntax: {rec.answer[:80]!r}")
        for sp in spans:
            b = sp.box
            img.boxes.append(ctx.box(img, b.label, b.x1, b.y1, b.x2, b.y2, where))
        return img

    def write(self, ds: Dataset, put) -> None:
        syn = FAMILIES[self.family]
        classes = ds.all_labels()
        user = IMAGE_TOKEN + prompt(self.family, classes)
        by_split: dict[str, list[dict]] = {}
        for im in ds.images:
            boxes = [Box(b.label, b.x1, b.y1, b.x2, b.y2) for b in im.boxes]
            rec = Record(user, syn.encode(boxes, im.width, im.height), f"images/{im.file_name}")
            by_split.setdefault(split_file(im.split), []).append(self.to_obj(rec))
            put(f"images/{im.file_name}", im.read())
        self.dump(by_split, put)


def text_field(obj: object, key: str, where: str) -> str:
    v = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(v, str):
        raise InvalidInput(f"{where}: {key!r} must be a string, got {type(v).__name__}")
    return v


def one_image(obj: dict, where: str) -> str:
    imgs = obj.get("images")
    if not isinstance(imgs, list) or len(imgs) != 1 or not isinstance(imgs[0], str) or not imgs[0]:
        raise InvalidInput(f"{where}: 'images' must be a list of one image path, got {imgs!r}")
    return imgs[0]


def two_turns(turns: object, where: str, role: str, content: str, user: str, assistant: str) -> tuple[str, str]:
    """(user text, answer) of a [user, assistant] conversation (a leading system turn is allowed)."""
    if not isinstance(turns, list):
        raise InvalidInput(f"{where}: the conversation must be a list of turns")
    turns = [t for t in turns if not (isinstance(t, dict) and t.get(role) == "system")]
    if len(turns) != 2 or not all(isinstance(t, dict) for t in turns):
        raise InvalidInput(f"{where}: expected one {user} turn and one {assistant} turn, got {len(turns)} turn(s)")
    if turns[0].get(role) != user or turns[1].get(role) != assistant:
        raise InvalidInput(f"{where}: turns must be {user!r} then {assistant!r}, got "
                           f"{turns[0].get(role)!r}, {turns[1].get(role)!r}")
    return text_field(turns[0], content, where), text_field(turns[1], content, where)
