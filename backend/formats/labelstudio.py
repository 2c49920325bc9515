"""Label Studio JSON export (the full "JSON" export: a list of tasks) with `rectanglelabels` results.

Read: every `.json` of the import (or the file the user named): a list of tasks (or one task).
`data.image` (a URL such as `/data/upload/3/1a2b3c4d-kart.png`, `/data/local-files/?d=dir/kart.png`,
`s3://bucket/kart.png` or a plain path) is looked up by its path, its base name, and the base name
without Label Studio's 8-hex upload prefix. Of a task's annotations the first one not cancelled is
used (a warning counts tasks with more); `rectanglelabels` results become boxes: `value.x/y/width/
height` are percentages of the image, `original_width/height` (when given) must match the image, a
non-zero `rotation` is rejected (an axis-aligned box would not be the same box). Other result types
(polygons, choices ...) are skipped with a warning. `data.split` (a string) sets the split.
Write: `tasks.json` (one task per image, `data.image` = `images/<file_name>`, one annotation with
the boxes as percentages) + `images/<file_name>`.
"""
from __future__ import annotations

import json
import posixpath
import re
from urllib.parse import parse_qs, unquote, urlparse

from backend.errors import InvalidInput
from backend.formats.base import Dataset, Format, ImageCtx, Source, load_json

_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def _num(v: object, what: str, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InvalidInput(f"{where}: {what} must be a number, got {v!r}")
    return float(v)


def _image_ref(url: str) -> str:
    """The file path inside a Label Studio image URL."""
    u = urlparse(url)
    if u.path.endswith("/data/local-files/") or u.path == "/data/local-files":
        d = parse_qs(u.query).get("d")
        if d:
            return unquote(d[0])
    return unquote(u.path if u.scheme or url.startswith("/") else url).lstrip("/")


class LabelStudio(Format):
    name = "labelstudio"
    can_write = True

    def read(self, source: Source, ctx: ImageCtx) -> Dataset:
        files = [source.focus] if source.focus else source.with_suffix(".json")
        if not files:
            raise InvalidInput("Label Studio import: no .json export found")
        ds = Dataset()
        skipped: dict[str, int] = {}
        multi = 0
        for jf in files:
            doc = load_json(source.read(jf), jf)
            tasks = doc if isinstance(doc, list) else [doc]
            for i, t in enumerate(tasks):
                multi += self._task(t, f"{jf}: task {i}", jf, source, ctx, ds, skipped)
        if multi:
            ctx.warnings.append(f"{multi} task(s) have several annotations; the first not cancelled was used")
        for kind, n in skipped.items():
            ctx.warnings.append(f"{n} result(s) of type {kind!r} skipped (only rectanglelabels are boxes)")
        return ctx.finish(ds)

    def _task(self, t: object, where: str, jf: str, source: Source, ctx: ImageCtx, ds: Dataset,
              skipped: dict[str, int]) -> int:
        if not isinstance(t, dict) or not isinstance(t.get("data"), dict):
            raise InvalidInput(f"{where}: a task must be an object with a 'data' object")
        url = t["data"].get("image")
        if not isinstance(url, str) or not url:
            raise InvalidInput(f"{where}: data.image must be a non-empty string")
        where = f"{where} ({url})"
        ref = _image_ref(url)
        base = posixpath.basename(ref)
        found = source.find(ref, near=jf, also=("images",))
        if found is None and _UPLOAD_PREFIX.match(base):
            found = source.find(_UPLOAD_PREFIX.sub("", base), near=jf, also=("images",))
        if found is None:
            raise InvalidInput(f"{where}: image file {ref!r} is not in the import")
        file_name = found.split("/", 1)[1] if found.startswith("images/") else found
        split = t["data"].get("split")
        img = ctx.image(found, file_name=file_name, split=split if isinstance(split, str) and split else None)
        anns = t.get("annotations") or []
        if not isinstance(anns, list):
            raise InvalidInput(f"{where}: 'annotations' must be a list")
        live = [a for a in anns if isinstance(a, dict) and not a.get("was_cancelled")]
        if live:
            results = live[0].get("result") or []
            if not isinstance(results, list):
                raise InvalidInput(f"{where}: annotation 'result' must be a list")
            for j, r in enumerate(results):
                self._result(r, f"{where}: result {j}", img, ctx, skipped)
        ds.images.append(img)
        return int(len(live) > 1)

    def _result(self, r: object, where: str, img, ctx: ImageCtx, skipped: dict[str, int]) -> None:
        if not isinstance(r, dict):
            raise InvalidInput(f"{where}: a result must be an object")
        kind = r.get("type")
        if kind != "rectanglelabels":
            skipped[str(kind)] = skipped.get(str(kind), 0) + 1
            return
        ctx.check_size(img, r.get("original_width"), r.get("original_height"), where)
        v = r.get("value")
        if not isinstance(v, dict):
            raise InvalidInput(f"{where}: 'value' must be an object")
        x, y, w, h = (_num(v.get(k), f"value.{k}", where) for k in ("x", "y", "width", "height"))
        if v.get("rotation") not in (None, 0, 0.0):
            raise InvalidInput(f"{where}: rotated rectangles (rotation={v.get('rotation')!r}) are not supported")
        labels = v.get("rectanglelabels")
        if not isinstance(labels, list) or len(labels) != 1:
            raise InvalidInput(f"{where}: value.rectanglelabels must hold exactly one label, got {labels!r}")
        W, H = img.width, img.height
        img.boxes.append(ctx.box(img, labels[0], x / 100 * W, y / 100 * H, (x + w) / 100 * W, (y + h) / 100 * H,
                                 where))

    def write(self, ds: Dataset, put) -> None:
        tasks = []
        for tid, im in enumerate(ds.images, 1):
            result = [{
                "id": f"b{tid}-{k}", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
                "original_width": im.width, "original_height": im.height, "image_rotation": 0,
                "value": {"x": b.x1 / im.width * 100, "y": b.y1 / im.height * 100,
                          "width": (b.x2 - b.x1) / im.width * 100, "height": (b.y2 - b.y1) / im.height * 100,
                          "rotation": 0, "rectanglelabels": [b.label]},
            } for k, b in enumerate(im.boxes)]
            data = {"image": f"images/{im.file_name}"}
            if im.split:
                data["split"] = im.split
            tasks.append({"id": tid, "data": data, "annotations": [{"id": tid, "result": result,
                                                                    "was_cancelled": False}],
                          "predictions": []})
            put(f"images/{im.file_name}", im.read())
        put("tasks.json", json.dumps(tasks).encode())
