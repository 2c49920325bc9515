"""Hugging Face datasets Parquet, the hub's common detection layout (detection-datasets/*, cppe-5 ...).

Columns: `image` (the `Image` feature: a struct {bytes, path}; bytes win, a path alone is looked up
beside the Parquet file, at the root, in `images/`, or by unique name), `objects` with `bbox` and
`category` (either the `Sequence(dict)` form, a struct of lists, or a list of structs), optional
`width` / `height` (checked against the image) and `image_id`. `bbox` is COCO [x, y, w, h] in
pixels, as the hub's detection sets store it; boxes then follow the box rule of `formats.base`.
`category` is an index into the ClassLabel names found in the file's `huggingface` schema
metadata or a `dataset_info.json` of the import (a string category is taken as the label).
Every `.parquet` of the import is read (or the file the user named); the file name or its folder
sets the split (`data/train-00000-of-00001.parquet`, `validation/0000.parquet`).
Hostile input: a file whose row groups declare more decoded bytes than the archive cap
(settings.max_archive_bytes, as for a zip) is rejected before anything is decoded.
Write: `data/<split>-00000-of-00001.parquet` per split (`val` as the hub's `validation`, images
without a split as `unsplit`), image bytes embedded, the features (ClassLabel names) in the schema
metadata, and a README.md whose `configs` maps each file to its split for `load_dataset`.
"""
from __future__ import annotations

import io
import json
import posixpath

from backend.errors import InvalidInput, TooLarge
from backend.formats.base import (Dataset, Format, ImageCtx, ParsedImage, Source, clean_label, load_json,
                                  split_from_path)

HF_SPLIT = {"val": "validation"}  # studio split -> hub split name (the reader maps it back)
UNSPLIT = "unsplit"


def _class_names(features: object) -> list[str] | None:
    """ClassLabel names of `objects.category` in a features tree, whatever its nesting."""
    def classlabel(node):
        while isinstance(node, dict):
            if node.get("_type") == "ClassLabel" or ("names" in node and isinstance(node["names"], list)):
                return node.get("names")
            node = node.get("feature")
        if isinstance(node, list) and node:  # the old `[feature]` shorthand for a Sequence
            return classlabel(node[0])
        return None

    def walk(node):
        if isinstance(node, dict):
            if "category" in node:
                return classlabel(node["category"])
            for v in node.values():
                found = walk(v)
                if found is not None:
                    return found
        elif isinstance(node, list):
            for v in node:
                found = walk(v)
                if found is not None:
                    return found
        return None

    if not isinstance(features, dict):
        return None
    return walk(features.get("objects", features))


def _features_of_info(doc: object) -> object:
    """`features` of a dataset_info.json ({features}, or the old {config: {features}})."""
    if isinstance(doc, dict):
        if "features" in doc:
            return doc["features"]
        for v in doc.values():
            if isinstance(v, dict) and "features" in v:
                return v["features"]
    return None


def _objects(cell: object, where: str) -> list[tuple[object, object]]:
    """[(bbox, category)] of one row's `objects` cell in either layout."""
    if cell is None:
        return []
    if isinstance(cell, dict):
        bbox, cat = cell.get("bbox"), cell.get("category")
        if bbox is None and cat is None:
            return []
        if not isinstance(bbox, list) or not isinstance(cat, list) or len(bbox) != len(cat):
            raise InvalidInput(f"{where}: objects.bbox and objects.category must be lists of the same length")
        return list(zip(bbox, cat))
    if isinstance(cell, list):
        out = []
        for j, o in enumerate(cell):
            if not isinstance(o, dict) or "bbox" not in o or "category" not in o:
                raise InvalidInput(f"{where}: objects[{j}] must have 'bbox' and 'category'")
            out.append((o["bbox"], o["category"]))
        return out
    raise InvalidInput(f"{where}: 'objects' must be a struct of lists or a list of structs, got {type(cell).__name__}")


class HfParquet(Format):
    name = "hf_parquet"
    can_write = True

    def read(self, source: Source, ctx: ImageCtx) -> Dataset:
        files = [source.focus] if source.focus else source.with_suffix(".parquet")
        if not files:
            raise InvalidInput("Hugging Face Parquet import: no .parquet file found")
        info_names = None
        infos = source.with_suffix("dataset_info.json")
        if infos:
            info_names = _class_names(_features_of_info(load_json(source.read(infos[0]), infos[0])))
        ds = Dataset()
        taken: set[str] = set()
        for pf in files:
            self._read_one(pf, source, ctx, ds, info_names, taken)
        return ctx.finish(ds)

    def _open(self, pf: str, data: bytes, cap: int | None):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            f = pq.ParquetFile(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as e:
            raise InvalidInput(f"{pf}: not a readable Parquet file ({e})") from None
        declared = sum(f.metadata.row_group(i).total_byte_size for i in range(f.metadata.num_row_groups))
        if cap is not None and declared > cap:
            raise TooLarge(f"{pf}: declares {declared} bytes of decoded data, over the cap of {cap}")
        return f

    def _read_one(self, pf: str, source: Source, ctx: ImageCtx, ds: Dataset, info_names, taken: set[str]) -> None:
        import pyarrow as pa

        f = self._open(pf, source.read(pf), ctx.max_decoded_bytes)
        cols = set(f.schema_arrow.names)
        missing = [c for c in ("image", "objects") if c not in cols]
        if missing:
            raise InvalidInput(f"{pf}: missing column(s) {', '.join(map(repr, missing))} "
                               f"(found {sorted(cols)[:20]})")
        meta = f.schema_arrow.metadata or {}
        names = info_names
        if b"huggingface" in meta:
            try:
                hf = json.loads(meta[b"huggingface"])
            except ValueError:
                raise InvalidInput(f"{pf}: the 'huggingface' schema metadata is not valid JSON") from None
            names = _class_names((hf.get("info") or {}).get("features") if isinstance(hf, dict) else None) or names
        if names is not None:
            if not isinstance(names, list):
                raise InvalidInput(f"{pf}: ClassLabel names must be a list")
            names = [clean_label(n, f"{pf}: ClassLabel names[{i}]") for i, n in enumerate(names)]
            for n in names:
                if n not in ds.labels:
                    ds.labels.append(n)
        split = split_from_path(pf)
        want = [c for c in ("image", "objects", "width", "height", "image_id") if c in cols]
        row = 0
        for g in range(f.metadata.num_row_groups):
            try:
                t = f.read_row_group(g, columns=want)
            except (pa.ArrowException, OSError) as e:
                raise InvalidInput(f"{pf}: row group {g} could not be read ({e})") from None
            data = {c: t.column(c).to_pylist() for c in want}
            for i in range(t.num_rows):
                where = f"{pf}: row {row}"
                img = self._image(data["image"][i], where, pf, source, ctx, split,
                                  data["image_id"][i] if "image_id" in data else row, taken)
                if "width" in data or "height" in data:
                    ctx.check_size(img, data.get("width", [0] * t.num_rows)[i],
                                   data.get("height", [0] * t.num_rows)[i], where)
                for j, (bb, cat) in enumerate(_objects(data["objects"][i], where)):
                    w = f"{where}: object {j}"
                    if isinstance(cat, bool) or not isinstance(cat, (int, str)):
                        raise InvalidInput(f"{w}: category must be a class index or a name, got {cat!r}")
                    if isinstance(cat, int):
                        if names is None:
                            raise InvalidInput(f"{w}: category {cat} is a class index but no ClassLabel names "
                                               "were found (Parquet 'huggingface' metadata or dataset_info.json)")
                        if not 0 <= cat < len(names):
                            raise InvalidInput(f"{w}: category {cat} is not a class index (0..{len(names) - 1})")
                        label = names[cat]
                    else:
                        label = cat
                    if not isinstance(bb, list) or len(bb) != 4 or not all(
                            isinstance(v, (int, float)) and not isinstance(v, bool) for v in bb):
                        raise InvalidInput(f"{w}: bbox must be 4 numbers [x, y, width, height], got {bb!r}")
                    x, y, bw, bh = (float(v) for v in bb)
                    img.boxes.append(ctx.box(img, label, x, y, x + bw, y + bh, w))
                ds.images.append(img)
                row += 1

    def _image(self, cell: object, where: str, pf: str, source: Source, ctx: ImageCtx, split: str | None,
               image_id: object, taken: set[str]) -> ParsedImage:
        data, path = None, None
        if isinstance(cell, dict):
            data, path = cell.get("bytes"), cell.get("path")
        elif isinstance(cell, (bytes, str)):
            data, path = (cell, None) if isinstance(cell, bytes) else (None, cell)
        elif cell is not None:
            raise InvalidInput(f"{where}: 'image' must be {{bytes, path}}, bytes or a path, got {type(cell).__name__}")
        if path is not None and not isinstance(path, str):
            raise InvalidInput(f"{where}: image path must be a string, got {type(path).__name__}")
        name = posixpath.normpath(path.replace("\\", "/")).lstrip("/") if path else ""
        if name.startswith("../") or posixpath.isabs(path or ""):
            name = posixpath.basename(name)  # an absolute cache path of the machine that wrote it
        if data is not None:
            img = ctx.image_bytes(data, name or "?", where, split=split)
        elif path:
            found = source.find(path, near=pf, also=("images",))
            if found is None:
                raise InvalidInput(f"{where}: image file {path!r} is not in the Parquet file nor in the import")
            img = ctx.image(found, file_name=name, split=split)
        else:
            raise InvalidInput(f"{where}: the image has neither bytes nor a path")
        if not name:
            name = f"{image_id}.{img.ext}"
        if name in taken:  # e.g. image ids that restart in every split file
            name = f"{split or UNSPLIT}/{name}"
        taken.add(name)
        img.file_name = name
        return img

    def write(self, ds: Dataset, put) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = ds.all_labels()
        cls = {n: i for i, n in enumerate(names)}
        features = {
            "image_id": {"dtype": "int64", "_type": "Value"},
            "image": {"_type": "Image"},
            "width": {"dtype": "int32", "_type": "Value"},
            "height": {"dtype": "int32", "_type": "Value"},
            "objects": {"feature": {
                "id": {"dtype": "int64", "_type": "Value"},
                "area": {"dtype": "float64", "_type": "Value"},
                "bbox": {"feature": {"dtype": "float64", "_type": "Value"}, "length": 4, "_type": "Sequence"},
                "category": {"names": names, "_type": "ClassLabel"},
            }, "_type": "Sequence"},
        }
        schema = pa.schema([
            ("image_id", pa.int64()),
            ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            ("width", pa.int32()), ("height", pa.int32()),
            ("objects", pa.struct([("id", pa.list_(pa.int64())), ("area", pa.list_(pa.float64())),
                                   ("bbox", pa.list_(pa.list_(pa.float64(), 4))),
                                   ("category", pa.list_(pa.int64()))])),
        ], metadata={"huggingface": json.dumps({"info": {"features": features}})})
        by_split: dict[str, list[ParsedImage]] = {}
        for im in ds.images:
            by_split.setdefault(HF_SPLIT.get(im.split, im.split) if im.split else UNSPLIT, []).append(im)
        box_id = 0
        configs = []
        for split, images in by_split.items():
            rows = []
            for im in images:
                objs = {"id": [], "area": [], "bbox": [], "category": []}
                for b in im.boxes:
                    box_id += 1
                    w, h = b.x2 - b.x1, b.y2 - b.y1
                    objs["id"].append(box_id)
                    objs["area"].append(w * h)
                    objs["bbox"].append([b.x1, b.y1, w, h])
                    objs["category"].append(cls[b.label])
                rows.append({"image_id": len(rows), "image": {"bytes": im.read(), "path": im.file_name},
                             "width": im.width, "height": im.height, "objects": objs})
            buf = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf, row_group_size=1000)
            path = f"data/{split}-00000-of-00001.parquet"
            put(path, buf.getvalue())
            configs.append(f"  - split: {split}\n    path: {path}\n")
        card = ("---\nconfigs:\n- config_name: default\n  data_files:\n" + "".join(configs) +
                "task_categories:\n- object-detection\n---\n\nExported by VLM Studio: object detection in the "
                "hub's common layout (`objects.bbox` is COCO [x, y, width, height] in pixels, "
                "`objects.category` a ClassLabel).\n")
        put("README.md", card.encode())
