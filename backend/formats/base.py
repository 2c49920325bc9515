"""The neutral parsed form every format reads into and writes from, and the input sources.

Box rule, the same for every format (readers call `ImageCtx.box`):
- coordinates are converted to absolute pixels x1 y1 x2 y2 of the *real* image (its decoded size,
  never a size the annotation file claims; a claimed size that differs is rejected);
- a non-finite coordinate, or zero / negative width or height, is rejected (422 naming the file
  and the box);
- a box entirely outside the image is rejected (422): it points at nothing, so the file is wrong;
- a box partly outside the image is clipped to it and counted in the report (`clipped`).
Label names are stripped; an empty name or one over 100 characters is rejected.

Sources are a directory on disk (never followed outside its root, symlinks included) or an
in-memory {relative path: bytes} from a zip (`storage.read_zip`) or uploaded files.
"""
from __future__ import annotations

import math
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from backend.errors import InvalidInput
from backend.storage import IMAGE_SUFFIXES, CheckedImage, check_image, safe_member_name

MAX_LABEL_LEN = 100  # models.Label.name is String(100)


def clean_label(name: object, where: str) -> str:
    if not isinstance(name, str):
        raise InvalidInput(f"{where}: label name must be a string, got {type(name).__name__}")
    n = name.strip()
    if not n:
        raise InvalidInput(f"{where}: label name is empty")
    if len(n) > MAX_LABEL_LEN:
        raise InvalidInput(f"{where}: label name is {len(n)} characters, over the limit of {MAX_LABEL_LEN}")
    return n


_SPLIT_RE = re.compile(r"(?:^|[_\-.])(train|validation|valid|val|test)(?=\d|[_\-.]|$)")
_SPLIT_NORM = {"valid": "val", "validation": "val"}


def split_from_name(name: str) -> str | None:
    """train / val / test from a file name (`instances_val2017.json`, `validation-00000-of-00001.parquet`)."""
    m = _SPLIT_RE.search(posixpath.basename(name).lower())
    return _SPLIT_NORM.get(m.group(1), m.group(1)) if m else None


def split_from_path(path: str) -> str | None:
    """The file name's split, else the nearest folder named train / val / test (`train/0000.parquet`)."""
    for part in reversed(path.split("/")):
        s = split_from_name(part)
        if s:
            return s
    return None


@dataclass
class ParsedBox:
    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    attributes: dict = field(default_factory=dict)


@dataclass
class ParsedImage:
    file_name: str  # relative path kept as the image's name in the project
    read: Callable[[], bytes]  # the bytes, on demand (a big import is not held in memory)
    width: int
    height: int
    sha256: str = ""
    ext: str = ""
    boxes: list[ParsedBox] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    split: str | None = None


@dataclass
class Dataset:
    images: list[ParsedImage] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # every declared label, even ones with no box
    clipped: int = 0
    warnings: list[str] = field(default_factory=list)

    def all_labels(self) -> list[str]:
        seen = dict.fromkeys(self.labels)
        for im in self.images:
            for b in im.boxes:
                seen.setdefault(b.label)
        return list(seen)


class Source:
    """Files of one import, named by safe relative posix paths."""

    focus: str | None = None  # the file the user pointed at (CLI: `studio import ... file.json`)
    skipped_links: tuple[str, ...] = ()  # links left out of names() (DirSource), for the error that finds nothing

    def names(self) -> list[str]:
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def __contains__(self, name: str) -> bool:
        return name in self._set()

    def _set(self) -> set[str]:
        if not hasattr(self, "_names_set"):
            self._names_set = set(self.names())
        return self._names_set

    def images(self) -> list[str]:
        return [n for n in self.names() if posixpath.splitext(n)[1].lower() in IMAGE_SUFFIXES]

    def with_suffix(self, *suffixes: str) -> list[str]:
        low = tuple(s.lower() for s in suffixes)
        return [n for n in self.names() if n.lower().endswith(low)]

    def find(self, ref: str, near: str = "", also: tuple[str, ...] = ()) -> str | None:
        """Resolve an image reference from an annotation file: relative to the annotation file,
        the root, a few conventional folders, then by unique base name."""
        ref = ref.replace("\\", "/")
        base_dir = posixpath.dirname(near)
        cands = [posixpath.join(base_dir, ref), ref]
        cands += [posixpath.join(base_dir, d, ref) for d in also] + [posixpath.join(d, ref) for d in also]
        for c in cands:
            c = posixpath.normpath(c)
            if not c.startswith("../") and c in self:
                return c
        by_base = self._by_base().get(posixpath.basename(ref), [])
        return by_base[0] if len(by_base) == 1 else None

    def _by_base(self) -> dict[str, list[str]]:
        if not hasattr(self, "_base_index"):
            idx: dict[str, list[str]] = {}
            for n in self.names():
                idx.setdefault(posixpath.basename(n), []).append(n)
            self._base_index = idx
        return self._base_index


class MemorySource(Source):
    def __init__(self, files: dict[str, bytes]):
        self.files = {safe_member_name(k): v for k, v in files.items()}

    def names(self) -> list[str]:
        return sorted(self.files)

    def read(self, name: str) -> bytes:
        return self.files[name]


class DirSource(Source):
    """A directory; every path (symlinks resolved) must stay inside the root."""

    def __init__(self, root: Path, focus: str | None = None):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise InvalidInput(f"{root}: not a directory")
        self.focus = focus
        self._names: list[str] | None = None

    def names(self) -> list[str]:
        if self._names is None:
            out, skipped = [], []
            for dirpath, dirnames, filenames in os.walk(self.root):  # os.walk does not follow dir links
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                rel = os.path.relpath(dirpath, self.root)
                prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
                skipped += [prefix + d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
                for f in filenames:
                    if f.startswith("."):
                        continue
                    full = os.path.join(dirpath, f)
                    if os.path.islink(full) and not Path(full).resolve().is_relative_to(self.root):
                        skipped.append(prefix + f)  # a symlink out of the root: not part of the import
                        continue
                    out.append(prefix + f)
            self._names, self._skipped = sorted(out), tuple(sorted(skipped))
        return self._names

    @property
    def skipped_links(self) -> tuple[str, ...]:  # listed with names(), whichever a reader asked first
        self.names()
        return self._skipped

    def read(self, name: str) -> bytes:
        if name in self:  # listed by names(): already checked to stay inside the root
            with open(os.path.join(self.root, name), "rb") as f:
                return f.read()
        p = (self.root / safe_member_name(name)).resolve()
        if not p.is_relative_to(self.root):
            raise InvalidInput(f"{name}: points outside the import directory")
        return p.read_bytes()


class ImageCtx:
    """What a reader gets: checked images (decoded once, validated against the settings caps) and
    the box rule. `progress` is called once per image checked."""

    def __init__(self, source: Source, *, max_bytes: int, max_pixels: int,
                 progress: Callable[[int], None] | None = None, max_decoded_bytes: int | None = None):
        self.source = source
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_decoded_bytes = max_decoded_bytes  # a container's decoded data (Parquet), like a zip's
        self.progress = progress
        self.clipped = 0
        self.warnings: list[str] = []

    def image(self, name: str, file_name: str | None = None, **kw) -> ParsedImage:
        data = self.source.read(name)
        ci: CheckedImage = check_image(data, name, max_bytes=self.max_bytes, max_pixels=self.max_pixels)
        if self.progress:
            self.progress(1)
        src = self.source
        # An EXIF-rotated image is stored upright (check_image re-encoded it): keep those bytes.
        read = (lambda: ci.data) if ci.data is not data else (lambda: src.read(name))
        return ParsedImage(file_name=file_name or name, read=read, width=ci.width,
                           height=ci.height, sha256=ci.sha256, ext=ci.ext, **kw)

    def image_bytes(self, data: bytes, file_name: str, where: str, **kw) -> ParsedImage:
        """An image whose bytes come inside the annotation file (a Parquet `image.bytes` cell)."""
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidInput(f"{where}: image bytes must be binary, got {type(data).__name__}")
        data = bytes(data)
        ci: CheckedImage = check_image(data, where, max_bytes=self.max_bytes, max_pixels=self.max_pixels)
        if self.progress:
            self.progress(1)
        upright = ci.data  # EXIF-rotated bytes were re-encoded upright by check_image
        return ParsedImage(file_name=file_name, read=lambda: upright, width=ci.width, height=ci.height,
                           sha256=ci.sha256, ext=ci.ext, **kw)

    def check_size(self, img: ParsedImage, width: object, height: object, where: str) -> None:
        """A size declared by the annotation file must match the image (0 / missing = not declared)."""
        try:
            w, h = int(width or 0), int(height or 0)
        except (TypeError, ValueError):
            raise InvalidInput(f"{where}: declared size {width!r}x{height!r} is not a number") from None
        if (w or h) and (w, h) != (img.width, img.height):
            raise InvalidInput(
                f"{where}: declared size {w}x{h} differs from the image {img.file_name} "
                f"({img.width}x{img.height})"
            )

    def box(self, img: ParsedImage, label: str, x1: object, y1: object, x2: object, y2: object,
            where: str, attributes: dict | None = None) -> ParsedBox:
        """Apply the module's box rule and return the box in image pixels."""
        label = clean_label(label, where)
        try:
            c = [float(v) for v in (x1, y1, x2, y2)]  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidInput(f"{where}: box coordinates {[x1, y1, x2, y2]} are not numbers") from None
        if not all(math.isfinite(v) for v in c):
            raise InvalidInput(f"{where}: box coordinates {c} are not finite")
        a, b, cc, d = c
        if cc <= a or d <= b:
            raise InvalidInput(f"{where}: box has zero or negative size (x1={a}, y1={b}, x2={cc}, y2={d})")
        W, H = img.width, img.height
        if cc <= 0 or d <= 0 or a >= W or b >= H:
            raise InvalidInput(f"{where}: box ({a}, {b}, {cc}, {d}) is entirely outside the {W}x{H} image")
        if a < 0 or b < 0 or cc > W or d > H:
            self.clipped += 1
            a, b, cc, d = max(a, 0.0), max(b, 0.0), min(cc, float(W)), min(d, float(H))
        return ParsedBox(label, a, b, cc, d, dict(attributes or {}))

    def finish(self, ds: Dataset) -> Dataset:
        ds.clipped += self.clipped
        ds.warnings.extend(self.warnings)
        return ds


def decode_text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{name}: not UTF-8 text (byte {e.start}: {e.reason})") from None


# Annotation files are a few levels deep; parsers, encoders and validators recurse, and Python's
# stack ends near 1000 levels: anything deeper than this is refused naming the file.
MAX_DEPTH = 100


def check_tree(doc: object, name: str) -> object:
    """Raise InvalidInput naming the file when a parsed document nests deeper than MAX_DEPTH or a
    string holds a NUL (PostgreSQL cannot store it). Iterative; shared (YAML alias) nodes once."""
    stack, seen = [(doc, 1)], set()
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise InvalidInput(f"{name}: a string contains a NUL character (\\u0000): {node[:40]!r}")
        elif isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                raise InvalidInput(f"{name}: nested deeper than {MAX_DEPTH} levels")
            if id(node) in seen:
                continue
            seen.add(id(node))
            for v in (list(node.keys()) + list(node.values()) if isinstance(node, dict) else node):
                stack.append((v, depth + 1))
    return doc


def parse_json(text: str, name: str):
    import json

    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"{name}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise InvalidInput(f"{name}: nested deeper than {MAX_DEPTH} levels") from None
    return check_tree(doc, name)


def load_json(data: bytes, name: str):
    return parse_json(decode_text(data, name), name)


class Format:
    """A format: `read(source, ctx) -> Dataset`; `write(dataset, put)` where `put(name, bytes)` adds a
    file to the export. Formats without a writer leave `can_write` False."""

    name: str = ""
    can_write: bool = False

    def read(self, source: Source, ctx: ImageCtx) -> Dataset:
        raise NotImplementedError

    def write(self, ds: Dataset, put: Callable[[str, bytes], None]) -> None:
        raise NotImplementedError(f"format {self.name!r} cannot be exported")

    def configured(self, family: str | None = None) -> Format:
        """This format with export options; only the instruction formats take a model family."""
        if family:
            raise InvalidInput(f"format {self.name!r} takes no model family (the instruction formats do)")
        return self


def iter_boxes(ds: Dataset) -> Iterator[tuple[ParsedImage, ParsedBox]]:
    for im in ds.images:
        for b in im.boxes:
            yield im, b
