"""YOLO / Ultralytics detection: `data.yaml` (`names`) + `images/` + `labels/*.txt`.

Read: every image under a folder named `images`; its label file is the same path with the last
`images` replaced by `labels` and the suffix by `.txt` (the Ultralytics rule); no label file = no
boxes. A `train` / `val` (`valid`) / `test` folder right below or right above `images` sets the
split (`images/train/a.jpg`, `train/images/a.jpg`) and is dropped from the image's name. Each line
is `class cx cy w h`, normalised to the real image size; a wrong field count, a non-number or a
class id not in `names` is rejected naming the file and the line. Boxes then follow the box rule
of `formats.base` (clip partly outside, reject entirely outside or empty).
Write: `data.yaml`, `images/[<split>/]<name>`, `labels/[<split>/]<stem>.txt` with 6 decimals.
"""
from __future__ import annotations

import posixpath

import yaml

from backend.errors import InvalidInput
from backend.formats.base import MAX_DEPTH, Dataset, Format, ImageCtx, Source, check_tree, clean_label, decode_text

SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def _names(doc: object, where: str) -> list[str]:
    if not isinstance(doc, dict) or "names" not in doc:
        raise InvalidInput(f"{where}: missing key 'names'")
    names = doc["names"]
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise InvalidInput(f"{where}: 'names' keys must be class ids (integers)") from None
        if ids != list(range(len(ids))):
            raise InvalidInput(f"{where}: 'names' ids must be 0..{len(ids) - 1}, got {ids}")
        names = [names[k] if k in names else names[str(k)] for k in ids]
    if not isinstance(names, list) or not names:
        raise InvalidInput(f"{where}: 'names' must be a non-empty list or {{id: name}} mapping")
    return [clean_label(n, f"{where}: names[{i}]") for i, n in enumerate(names)]


def _layout(path: str) -> tuple[str, str | None, str] | None:
    """(label path, split, file name) of an image path, or None when it is not under `images/`."""
    parts = path.split("/")
    if "images" not in parts[:-1]:
        return None
    k = len(parts) - 1 - parts[::-1].index("images", 1)
    label = "/".join(parts[:k] + ["labels"] + parts[k + 1:])
    rest, split = parts[k + 1:], None
    if len(rest) > 1 and rest[0].lower() in SPLITS:
        split, rest = SPLITS[rest[0].lower()], rest[1:]
    elif k > 0 and parts[k - 1].lower() in SPLITS:
        split = SPLITS[parts[k - 1].lower()]
    return posixpath.splitext(label)[0] + ".txt", split, "/".join(rest)


class Yolo(Format):
    name = "yolo"
    can_write = True

    def read(self, source: Source, ctx: ImageCtx) -> Dataset:
        yamls = [source.focus] if source.focus and source.focus.endswith((".yaml", ".yml")) else sorted(
            source.with_suffix("data.yaml", "data.yml"), key=len) or source.with_suffix(".yaml", ".yml")
        if not yamls:
            raise InvalidInput("YOLO import: no data.yaml found")
        yf = yamls[0]
        try:
            doc = check_tree(yaml.safe_load(decode_text(source.read(yf), yf)), yf)
        except yaml.YAMLError as e:
            raise InvalidInput(f"{yf}: not valid YAML ({e})") from None
        except RecursionError:
            raise InvalidInput(f"{yf}: nested deeper than {MAX_DEPTH} levels") from None
        names = _names(doc, yf)
        ds = Dataset(labels=list(names))
        used_labels = set()
        for path in source.images():
            lay = _layout(path)
            if lay is None:
                continue
            label_path, split, file_name = lay
            img = ctx.image(path, file_name=file_name, split=split)
            ds.images.append(img)
            if label_path not in source:
                continue
            used_labels.add(label_path)
            for ln, line in enumerate(decode_text(source.read(label_path), label_path).splitlines(), 1):
                fields = line.split()
                if not fields:
                    continue
                where = f"{label_path}: line {ln}"
                if len(fields) != 5:
                    raise InvalidInput(f"{where}: expected 5 fields (class cx cy w h), got {len(fields)}")
                try:
                    cls = int(fields[0])
                    cx, cy, w, h = (float(v) for v in fields[1:])
                except ValueError:
                    raise InvalidInput(f"{where}: fields must be numbers, got {line.strip()!r}") from None
                if not 0 <= cls < len(names):
                    raise InvalidInput(f"{where}: class id {cls} is not in names (0..{len(names) - 1})")
                W, H = img.width, img.height
                img.boxes.append(ctx.box(img, names[cls], (cx - w / 2) * W, (cy - h / 2) * H,
                                         (cx + w / 2) * W, (cy + h / 2) * H, where))
        if not ds.images:
            raise InvalidInput("YOLO import: no images under an images/ folder")
        orphans = [n for n in source.with_suffix(".txt") if "labels" in n.split("/")[:-1] and n not in used_labels]
        if orphans:
            ctx.warnings.append(f"{len(orphans)} label file(s) without an image, e.g. {orphans[0]}")
        return ctx.finish(ds)

    def write(self, ds: Dataset, put) -> None:
        names = ds.all_labels()
        cls = {n: i for i, n in enumerate(names)}
        splits = sorted({im.split for im in ds.images if im.split})
        for im in ds.images:
            sub = f"{im.split}/" if im.split else ""
            lines = []
            for b in im.boxes:
                cx, cy = (b.x1 + b.x2) / 2 / im.width, (b.y1 + b.y2) / 2 / im.height
                w, h = (b.x2 - b.x1) / im.width, (b.y2 - b.y1) / im.height
                lines.append(f"{cls[b.label]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
            put(f"images/{sub}{im.file_name}", im.read())
            put(f"labels/{sub}{posixpath.splitext(im.file_name)[0]}.txt", "".join(lines).encode())
        doc: dict = {"path": "."}
        if splits:
            doc.update({s: f"images/{s}" for s in splits})
        else:
            doc.update({"train": "images", "val": "images"})
        doc["names"] = dict(enumerate(names))
        put("data.yaml", yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode())
