"""Pure text codecs: pixel boxes <-> each family's native box syntax. No torch, no transformers.

Every `decode_*` returns `Span`s (label, pixel box, character span in the text, and the characters
that score it) so inference can score a box from the tokens that produced it, and never raises: text
that does not parse is skipped, repeated boxes are dropped, unknown labels are kept with known=False.
"""
from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass

from worker.types import Box

NUM = r"(-?\d+(?:\.\d+)?)"


@dataclass(frozen=True)
class Span:
    box: Box
    start: int  # character span of this box's text in the decoded string
    end: int
    # The characters whose tokens score the box (worker.inference): its coordinates (first number's
    # start, last one's end) when one class was asked, as the label is then no decision; else its whole text.
    scored: tuple[int, int]


@functools.lru_cache(maxsize=4096)  # labels repeat: 100k boxes share a handful of names
def norm_label(label: str) -> str:
    """Case / whitespace normalisation used for matching decoded labels to classes."""
    return " ".join(str(label).split()).lower()


def _match_label(label: str, canon: dict[str, str]) -> str:
    """The normalised label; prose before a class name ("here is the kart") is dropped, and a box
    without a label takes the asked class when exactly one was asked."""
    key = norm_label(label).strip(" \t,:.-\"'")
    if not key:
        return next(iter(canon)) if len(canon) == 1 else ""
    if key in canon:
        return key
    ends = [c for c in canon if key.endswith(" " + c)]
    return max(ends, key=len) if ends else key


def _coords(m: re.Match, first: int, last: int, offset: int = 0) -> tuple[int, int]:
    """Character span of groups first..last of `m` (the coordinates), shifted by `offset`."""
    return offset + m.start(first), offset + m.end(last)


def _finish(raw: list[tuple[str, tuple[float, float, float, float], int, int, tuple[int, int]]],
            classes: list[str], width: int, height: int) -> list[Span]:
    """Clamp into the image, order corners, match labels to classes, de-duplicate."""
    canon = {norm_label(c): c for c in classes}
    one_class = len(canon) == 1
    seen: set = set()
    out: list[Span] = []
    for label, (x1, y1, x2, y2), start, end, coords in raw:
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            continue
        x1, x2 = sorted((min(max(x1, 0.0), width), min(max(x2, 0.0), width)))
        y1, y2 = sorted((min(max(y1, 0.0), height), min(max(y2, 0.0), height)))
        key_label = _match_label(label, canon)
        if not key_label:
            continue
        known = key_label in canon
        name = canon.get(key_label, key_label)
        key = (key_label, round(x1, 3), round(y1, 3), round(x2, 3), round(y2, 3))
        if key in seen:  # PaliGemma likes to repeat the same box until max_new_tokens
            continue
        seen.add(key)
        scored = coords if one_class else (start, end)
        out.append(Span(Box(name, x1, y1, x2, y2, known=known), start, end, scored))
    return out


# ---------------------------------------------------------------- PaliGemma: 1024 location bins

def loc_bin(coord: float, size: int) -> int:
    """floor(coord / size * 1024) clamped to 0..1023 (round() would give the non-existent bin 1024)."""
    return min(1023, max(0, math.floor(coord / size * 1024)))


def bin_center(b: int, size: int) -> float:
    # The bin covers [b, b+1) * size / 1024; its centre is within half a bin of any coord in it.
    return (b + 0.5) * size / 1024


def loc_token(b: int) -> str:
    return f"<loc{b:04d}>"


LOC_TOKENS = [loc_token(b) for b in range(1024)]  # PaliGemma's location tokens, bin order


def encode_paligemma(boxes: list[Box], width: int, height: int) -> str:
    parts = []
    for b in boxes:
        locs = "".join(loc_token(v) for v in (loc_bin(b.y1, height), loc_bin(b.x1, width),
                                                 loc_bin(b.y2, height), loc_bin(b.x2, width)))
        parts.append(f"{locs} {b.label}")
    return " ; ".join(parts)


def region_paligemma(b: Box, width: int, height: int) -> str:
    """A box inside a question: its location tokens only (the label would give the answer away)."""
    return "".join(loc_token(v) for v in (loc_bin(b.y1, height), loc_bin(b.x1, width),
                                           loc_bin(b.y2, height), loc_bin(b.x2, width)))


_PG = re.compile(r"<loc(\d{4})><loc(\d{4})><loc(\d{4})><loc(\d{4})>\s*([^;<]*)")


def decode_paligemma(text: str, width: int, height: int, classes: list[str]) -> list[Span]:
    raw = []
    for m in _PG.finditer(text or ""):
        y1, x1, y2, x2 = (min(int(g), 1023) for g in m.groups()[:4])
        raw.append((m.group(5), (bin_center(x1, width), bin_center(y1, height),
                                 bin_center(x2, width), bin_center(y2, height)), m.start(), m.end(),
                    _coords(m, 1, 4)))
    return _finish(raw, classes, width, height)


# ---------------------------------------------------------------- Qwen2-VL: 0..999, ref/box tokens

def _to_1000(c: float, size: int) -> int:
    return min(1000, max(0, round(c / size * 1000)))


def _to_999(c: float, size: int) -> int:
    """Qwen2-VL's grid: coordinates x / size * 1000 in 0..999 (the model never emits 1000)."""
    return min(999, max(0, round(c / size * 1000)))


def _qwen2_box(b: Box, width: int, height: int) -> str:
    return (f"<|box_start|>({_to_999(b.x1, width)},{_to_999(b.y1, height)}),"
            f"({_to_999(b.x2, width)},{_to_999(b.y2, height)})<|box_end|>")


def encode_qwen2(boxes: list[Box], width: int, height: int) -> str:
    return "".join(f"<|object_ref_start|>{b.label}<|object_ref_end|>{_qwen2_box(b, width, height)}" for b in boxes)


def region_qwen2(b: Box, width: int, height: int) -> str:
    return _qwen2_box(b, width, height)


# Matches both the full form and seed 002's special-token-stripped form `person(531,61),(771,896)`.
_QW = re.compile(
    r"(?:<\|object_ref_start\|>)?\s*([^()<>|,;\n]*?)\s*(?:<\|object_ref_end\|>)?\s*(?:<\|box_start\|>)?"
    rf"\(\s*{NUM}\s*,\s*{NUM}\s*\)\s*,\s*\(\s*{NUM}\s*,\s*{NUM}\s*\)(?:<\|box_end\|>)?")


def decode_qwen2(text: str, width: int, height: int, classes: list[str]) -> list[Span]:
    raw = []
    last_label = ""
    for m in _QW.finditer(text or ""):
        label = m.group(1).strip() or last_label  # Qwen2-VL may list several boxes after one ref
        last_label = label
        x1, y1, x2, y2 = (float(g) for g in m.groups()[1:])
        raw.append((label, (x1 / 1000 * width, y1 / 1000 * height, x2 / 1000 * width,
                            y2 / 1000 * height), m.start(), m.end(), _coords(m, 2, 5)))
    return _finish(raw, classes, width, height)


def encode_ref_plain(boxes: list[Box], width: int, height: int) -> str:
    """Seed 002's parsed form: `person(531,61),(771,896)` (0..1000), objects joined by ', '."""
    return ", ".join(f"{b.label}({_to_1000(b.x1, width)},{_to_1000(b.y1, height)}),"
                     f"({_to_1000(b.x2, width)},{_to_1000(b.y2, height)})" for b in boxes)


decode_ref_plain = decode_qwen2

# ---------------------------------------------------------------- Qwen2.5-VL: resized absolute px


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56,
                 max_pixels: int = 28 * 28 * 1280) -> tuple[int, int]:
    """Qwen2-VL / 2.5-VL input size (same arithmetic as transformers' smart_resize; tested equal)."""
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _qwen25_xyxy(b: Box, width: int, height: int, resized: tuple[int, int]) -> list[int]:
    rh, rw = resized
    return [min(rw, max(0, round(b.x1 * rw / width))), min(rh, max(0, round(b.y1 * rh / height))),
            min(rw, max(0, round(b.x2 * rw / width))), min(rh, max(0, round(b.y2 * rh / height)))]


def encode_qwen25(boxes: list[Box], width: int, height: int, resized: tuple[int, int], *,
                  fenced: bool = False) -> str:
    """JSON objects; labels as written (ensure_ascii=False: `café`, not `caf\\u00e9`). fenced=True
    is the layout Qwen2.5-VL-Instruct itself emits for grounding (a ```json block, one object
    per line), used for detection targets; answers embed the compact one-line form."""
    items = [json.dumps({"bbox_2d": _qwen25_xyxy(b, width, height, resized), "label": b.label}, ensure_ascii=False)
             for b in boxes]
    if not fenced:
        return "[" + ", ".join(items) + "]"
    return "```json\n[\n" + ",\n".join("\t" + i for i in items) + "\n]\n```"


def region_qwen25(b: Box, width: int, height: int, resized: tuple[int, int]) -> str:
    return json.dumps({"bbox_2d": _qwen25_xyxy(b, width, height, resized)})


_QW25_OBJ = re.compile(r"\{[^{}]*\}")
_QW25_BOX = re.compile(rf'"bbox_2d"\s*:\s*\[\s*{NUM}\s*,\s*{NUM}\s*,\s*{NUM}\s*,\s*{NUM}\s*\]')
_QW25_LABEL = re.compile(r'"label"\s*:\s*"((?:[^"\\]|\\.)*)"')


def decode_qwen25(text: str, width: int, height: int, classes: list[str],
                  resized: tuple[int, int]) -> list[Span]:
    """Object by object with regexes, so truncated JSON still yields the complete objects."""
    rh, rw = resized
    raw = []
    for m in _QW25_OBJ.finditer(text or ""):
        b, lab = _QW25_BOX.search(m.group(0)), _QW25_LABEL.search(m.group(0))
        if not b:
            continue
        try:
            label = json.loads(f'"{lab.group(1)}"') if lab else ""
        except ValueError:
            label = lab.group(1)
        x1, y1, x2, y2 = (float(g) for g in b.groups())
        raw.append((label, (x1 * width / rw, y1 * height / rh, x2 * width / rw, y2 * height / rh),
                    m.start(), m.end(), _coords(b, 1, 4, m.start())))
    return _finish(raw, classes, width, height)


# ---------------------------------------------------------------- SmolVLM / Idefics3: plain text
# Normalised 0..1000 rather than pixels: Idefics3 resizes / tiles the image so the model never
# sees the original size, and 0..1000 keeps every coordinate at <= 4 tokens whatever the size.

def encode_plain(boxes: list[Box], width: int, height: int) -> str:
    return "; ".join(f"{b.label} [{_to_1000(b.x1, width)}, {_to_1000(b.y1, height)}, "
                     f"{_to_1000(b.x2, width)}, {_to_1000(b.y2, height)}]" for b in boxes)


def region_plain(b: Box, width: int, height: int) -> str:
    return f"[{_to_1000(b.x1, width)}, {_to_1000(b.y1, height)}, {_to_1000(b.x2, width)}, {_to_1000(b.y2, height)}]"


_PLAIN = re.compile(rf"([^\[\];\n]*?)\s*\[\s*{NUM}\s*,\s*{NUM}\s*,\s*{NUM}\s*,\s*{NUM}\s*\]")


def decode_plain(text: str, width: int, height: int, classes: list[str]) -> list[Span]:
    raw = []
    for m in _PLAIN.finditer(text or ""):
        label = m.group(1).strip(" \t,:.-")
        x1, y1, x2, y2 = (float(g) for g in m.groups()[1:])
        raw.append((label, (x1 / 1000 * width, y1 / 1000 * height, x2 / 1000 * width,
                            y2 / 1000 * height), m.start(), m.end(), _coords(m, 2, 5)))
    return _finish(raw, classes, width, height)


def fill_answer(answer: str, boxes: list[Box], encode) -> str:
    """Fill `{box0}`, `{box1}` ... with the family's rendering of each box (str.replace, not
    str.format, so answers that contain JSON braces are left alone)."""
    for i, b in enumerate(boxes):
        answer = answer.replace("{box%d}" % i, encode([b]))
    return answer
