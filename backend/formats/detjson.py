"""Seed-style detection JSON: `{"image_path": "a.jpg", "object": {"person": [[x1, y1, x2, y2]], ...}}`.

Read: every `.json` / `.jsonl` of the import (or the file the user named); a file holds one entry,
a list of entries, or one entry per line (`.jsonl`). `image_path` is looked up beside the JSON
file, at the root, in `images/`, or by unique name; the image keeps its path in the import as its
name. Coordinates are absolute pixels and follow the box rule of `formats.base`. An entry's
`split` sets the split; `width` / `height` are checked against the image; other scalar keys
become image meta.
"""
from __future__ import annotations


from backend.errors import InvalidInput
from backend.formats.base import Dataset, Format, ImageCtx, Source, decode_text, load_json, parse_json


class DetJson(Format):
    name = "detjson"

    def read(self, source: Source, ctx: ImageCtx) -> Dataset:
        files = [source.focus] if source.focus else source.with_suffix(".json", ".jsonl")
        if not files:
            raise InvalidInput("detection JSON import: no .json file found")
        ds = Dataset()
        for jf in files:
            if jf.lower().endswith(".jsonl"):
                entries = []
                for ln, line in enumerate(decode_text(source.read(jf), jf).splitlines(), 1):
                    if line.strip():
                        entries.append(parse_json(line, f"{jf}: line {ln}"))
            else:
                doc = load_json(source.read(jf), jf)
                entries = doc if isinstance(doc, list) else [doc]
            for i, e in enumerate(entries):
                self._entry(e, f"{jf}: entry {i}", jf, source, ctx, ds)
        return ctx.finish(ds)

    def _entry(self, e: object, where: str, jf: str, source: Source, ctx: ImageCtx, ds: Dataset) -> None:
        if not isinstance(e, dict) or "image_path" not in e or "object" not in e:
            raise InvalidInput(f"{where}: missing key(s) 'image_path' and/or 'object'")
        if not isinstance(e["image_path"], str) or not isinstance(e["object"], dict):
            raise InvalidInput(f"{where}: 'image_path' must be a string and 'object' a {{label: boxes}} object")
        found = source.find(e["image_path"], near=jf, also=("images",))
        if found is None:
            raise InvalidInput(f"{where}: image file {e['image_path']!r} is not in the import")
        split = e.get("split") if isinstance(e.get("split"), str) else None
        meta = {k: v for k, v in e.items() if k not in ("image_path", "object", "split", "width", "height")
                and isinstance(v, (str, int, float, bool))}
        img = ctx.image(found, split=split, meta=meta)
        ctx.check_size(img, e.get("width"), e.get("height"), where)
        for label, boxes in e["object"].items():
            if not isinstance(boxes, list):
                raise InvalidInput(f"{where}: boxes of {label!r} must be a list of [x1, y1, x2, y2]")
            for j, bb in enumerate(boxes):
                w = f"{where}: {label!r} box {j}"
                if not isinstance(bb, list) or len(bb) != 4:
                    raise InvalidInput(f"{w}: expected [x1, y1, x2, y2], got {bb!r}")
                img.boxes.append(ctx.box(img, label, *bb, w))
        ds.images.append(img)
