"""CVAT for images 1.1 XML: `annotations.xml` + `images/`.

Read: every `.xml` of the import (or the file the user named) whose root is `<annotations>`, parsed
with defusedxml (entities / DTDs are rejected with a 422). Labels come from `<meta>` (`task` or
`project` `<labels><label><name>`), so unused labels are kept. Each `<image name width height
[subset]>` is looked up beside the XML, in `images/`, `images/<subset>/`, or by unique name; the
declared size must match the image. `<box label xtl ytl xbr ybr>` become boxes under the box rule
of `formats.base` (pixels, as CVAT writes them); `occluded` and `<attribute name>` children are
kept as box attributes; a non-zero `rotation` is rejected. Other shapes (polygon, polyline, points,
mask ...) are skipped with a warning. `subset` (`Train`, `Validation`, `Test` ...) sets the split.
Write: `annotations.xml` (version 1.1, labels in meta, subset per image) + `images/<file_name>`.
"""
from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, tostring

from backend.errors import InvalidInput
from backend.formats.base import Dataset, Format, ImageCtx, Source, clean_label, split_from_name
from backend.formats.voc import _parse

_SHAPES = ("polygon", "polyline", "points", "mask", "cuboid", "ellipse", "skeleton", "tag")
_SUBSET_OUT = {"train": "Train", "val": "Validation", "test": "Test"}


def _subset(s: str | None) -> str | None:
    if not s:
        return None
    return split_from_name(s) or s.strip().lower() or None


class Cvat(Format):
    name = "cvat"
    can_write = True

    def read(self, source: Source, ctx: ImageCtx) -> Dataset:
        xmls = [source.focus] if source.focus else source.with_suffix(".xml")
        if not xmls:
            raise InvalidInput("CVAT import: no .xml annotation file found")
        ds = Dataset()
        skipped = 0
        for xf in xmls:
            root = _parse(source.read(xf), xf)
            if root.tag != "annotations":
                raise InvalidInput(f"{xf}: root element is <{root.tag}>, expected <annotations> (CVAT for images 1.1)")
            for i, lab in enumerate(root.iterfind("meta/*/labels/label")):
                n = clean_label(lab.findtext("name"), f"{xf}: meta label {i}")
                if n not in ds.labels:
                    ds.labels.append(n)
            for el in root.iterfind("image"):
                name = el.get("name")
                where = f"{xf}: image id {el.get('id')}"
                if not name:
                    raise InvalidInput(f"{where}: missing name")
                subset = el.get("subset")
                also = ("images",) + ((f"images/{subset}",) if subset else ())
                found = source.find(name, near=xf, also=also)
                if found is None:
                    raise InvalidInput(f"{where}: image file {name!r} is not in the import")
                img = ctx.image(found, file_name=name.replace("\\", "/"), split=_subset(subset))
                ctx.check_size(img, el.get("width"), el.get("height"), where)
                for j, b in enumerate(el):
                    w = f"{where} ({name}): <{b.tag}> {j}"
                    if b.tag in _SHAPES:
                        skipped += 1
                        continue
                    if b.tag != "box":
                        continue
                    try:
                        rotation = float(b.get("rotation") or 0)
                    except ValueError:
                        raise InvalidInput(f"{w}: rotation {b.get('rotation')!r} is not a number") from None
                    if rotation != 0:
                        raise InvalidInput(f"{w}: rotated boxes (rotation={b.get('rotation')}) are not supported")
                    attrs: dict = {}
                    if b.get("occluded") not in (None, "0"):
                        attrs["occluded"] = 1
                    for a in b.iterfind("attribute"):
                        if a.get("name"):
                            attrs[a.get("name")] = a.text or ""
                    img.boxes.append(ctx.box(img, b.get("label"), b.get("xtl"), b.get("ytl"), b.get("xbr"),
                                             b.get("ybr"), w, attrs))
                ds.images.append(img)
        if skipped:
            ctx.warnings.append(f"{skipped} non-box shape(s) (polygons, points ...) skipped")
        return ctx.finish(ds)

    def write(self, ds: Dataset, put) -> None:
        root = Element("annotations")
        SubElement(root, "version").text = "1.1"
        task = SubElement(SubElement(root, "meta"), "task")
        SubElement(task, "name").text = "exported by VLM Studio"
        labels = SubElement(task, "labels")
        for n in ds.all_labels():
            lab = SubElement(labels, "label")
            SubElement(lab, "name").text = n
            SubElement(lab, "type").text = "rectangle"
            SubElement(lab, "attributes")
        for iid, im in enumerate(ds.images):
            el = SubElement(root, "image", id=str(iid), name=im.file_name, width=str(im.width),
                            height=str(im.height))
            if im.split:
                el.set("subset", _SUBSET_OUT.get(im.split, im.split))
            for b in im.boxes:
                occ = "1" if b.attributes.get("occluded") else "0"
                box = SubElement(el, "box", label=b.label, source="manual", occluded=occ,
                                 xtl=repr(float(b.x1)), ytl=repr(float(b.y1)), xbr=repr(float(b.x2)),
                                 ybr=repr(float(b.y2)), z_order="0")
                for k, v in b.attributes.items():
                    if k != "occluded":
                        SubElement(box, "attribute", name=str(k)).text = str(v)
            put(f"images/{im.file_name}", im.read())
        put("annotations.xml", tostring(root, encoding="utf-8", xml_declaration=True))
