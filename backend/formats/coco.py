"""COCO detection JSON (+ the images beside it, in `images/`, or anywhere in the import by unique name).

Read: every `.json` of the import (or the one file the user named) with `images`, `categories` and
optionally `annotations` (missing: a warning, images come without boxes). Categories become labels;
`bbox` [x, y, w, h] becomes x1 y1 x2 y2 under the box rule of `formats.base`. A file name ending in
train/val/test (`instances_val2017.json`) or an image's own `"split"` key sets the image's split.
Annotation `attributes` (CVAT style) and `iscrowd` are kept as box attributes.
Write: `annotations.json` (with a `"split"` key per image) + `images/<file_name>`.
"""
from __future__ import annotations

import json
import posixpath

from backend.errors import InvalidInput
from backend.formats.base import Dataset, Format, ImageCtx, Source, clean_label, load_json, split_from_name

def _need(obj: object, keys: tuple[str, ...], where: str) -> dict:
    if not isinstance(obj, dict):
        raise InvalidInput(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise InvalidInput(f"{where}: missing key(s) {', '.join(map(repr, missing))}")
    return obj


class Coco(Format):
    name = "coco"
    can_write = True

    def read(self, source: Source, ctx: ImageCtx) -> Dataset:
        files = [source.focus] if source.focus else source.with_suffix(".json")
        if not files:
            raise InvalidInput("COCO import: no .json annotation file found")
        ds = Dataset()
        for jf in files:
            self._read_one(jf, source, ctx, ds)
        return ctx.finish(ds)

    def _read_one(self, jf: str, source: Source, ctx: ImageCtx, ds: Dataset) -> None:
        doc = _need(load_json(source.read(jf), jf), ("images", "categories"), jf)
        if "annotations" not in doc:
            ctx.warnings.append(f"{jf}: no 'annotations' key; its images are imported without boxes")
        cats: dict[object, str] = {}
        for i, c in enumerate(doc["categories"]):
            c = _need(c, ("id", "name"), f"{jf}: categories[{i}]")
            if c["id"] in cats:
                raise InvalidInput(f"{jf}: category id {c['id']} appears twice")
            cats[c["id"]] = clean_label(c["name"], f"{jf}: category id {c['id']}")
            if cats[c["id"]] not in ds.labels:
                ds.labels.append(cats[c["id"]])
        file_split = split_from_name(jf)
        images = {}
        for i, rec in enumerate(doc["images"]):
            rec = _need(rec, ("id", "file_name"), f"{jf}: images[{i}]")
            where = f"{jf}: image id {rec['id']}"
            if rec["id"] in images:
                raise InvalidInput(f"{where}: image id appears twice")
            if not isinstance(rec["file_name"], str) or not rec["file_name"]:
                raise InvalidInput(f"{where}: file_name must be a non-empty string")
            found = source.find(rec["file_name"], near=jf, also=("images",))
            if found is None:
                raise InvalidInput(f"{where}: image file {rec['file_name']!r} is not in the import")
            split = rec.get("split") or file_split
            img = ctx.image(found, file_name=posixpath.normpath(rec["file_name"].replace("\\", "/")),
                            split=split if isinstance(split, str) else None)
            ctx.check_size(img, rec.get("width"), rec.get("height"), where)
            images[rec["id"]] = img
            ds.images.append(img)
        for i, a in enumerate(doc.get("annotations") or []):
            a = _need(a, ("id", "image_id", "category_id", "bbox"), f"{jf}: annotations[{i}]")
            where = f"{jf}: annotation id {a['id']}"
            img = images.get(a["image_id"])
            if img is None:
                raise InvalidInput(f"{where}: unknown image_id {a['image_id']!r}")
            if a["category_id"] not in cats:
                raise InvalidInput(f"{where}: unknown category_id {a['category_id']!r}")
            bb = a["bbox"]
            if not isinstance(bb, list) or len(bb) != 4 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in bb
            ):
                raise InvalidInput(f"{where}: bbox must be 4 numbers [x, y, width, height], got {bb!r}")
            x, y, w, h = (float(v) for v in bb)
            if w <= 0 or h <= 0:
                raise InvalidInput(f"{where}: bbox has zero or negative size (width={w}, height={h})")
            attrs = dict(a["attributes"]) if isinstance(a.get("attributes"), dict) else {}
            if a.get("iscrowd"):
                attrs["iscrowd"] = 1
            img.boxes.append(ctx.box(img, cats[a["category_id"]], x, y, x + w, y + h, where, attrs))

    def write(self, ds: Dataset, put) -> None:
        labels = ds.all_labels()
        cat_id = {n: i + 1 for i, n in enumerate(labels)}
        images, anns = [], []
        for iid, im in enumerate(ds.images, 1):
            rec = {"id": iid, "file_name": im.file_name, "width": im.width, "height": im.height}
            if im.split:
                rec["split"] = im.split
            images.append(rec)
            for b in im.boxes:
                w, h = b.x2 - b.x1, b.y2 - b.y1
                ann = {"id": len(anns) + 1, "image_id": iid, "category_id": cat_id[b.label],
                       "bbox": [b.x1, b.y1, w, h], "area": w * h, "iscrowd": int(bool(b.attributes.get("iscrowd")))}
                extra = {k: v for k, v in b.attributes.items() if k != "iscrowd"}
                if extra:
                    ann["attributes"] = extra
                anns.append(ann)
            put(f"images/{im.file_name}", im.read())
        doc = {"info": {"description": "exported by VLM Studio"}, "images": images, "annotations": anns,
               "categories": [{"id": i, "name": n, "supercategory": ""} for n, i in cat_id.items()]}
        put("annotations.json", json.dumps(doc).encode())
