"""Pascal VOC XML: `Annotations/*.xml` + `JPEGImages/*` (+ optional `ImageSets/Main/<split>.txt`).

Read: every `.xml` of the import, parsed with defusedxml (any entity declaration, external entity
or DTD trick is rejected with a 422). `<filename>` is looked up beside the XML, in `JPEGImages/`,
or by unique name. The image size is the decoded image's; a `<size>` that disagrees is rejected.
`<object><name>` + `<bndbox>` become boxes under the box rule of `formats.base`; coordinates are
taken as given (no 1-based shift, so an export re-imports exactly); `difficult`, `truncated`,
`occluded` and `pose` are kept as box attributes. A stem listed in `ImageSets/Main/{train,val,
test}.txt` sets the split.
Write: `Annotations/<name>.xml`, `JPEGImages/<name>`, `ImageSets/Main/<split>.txt`.
"""
from __future__ import annotations

import posixpath
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from backend.errors import InvalidInput
from backend.formats.base import Dataset, Format, ImageCtx, Source

_ATTRS = ("difficult", "truncated", "occluded", "pose")
_SPLITS = ("train", "val", "test")


def _text(el, tag: str) -> str | None:
    t = el.findtext(tag)
    return t.strip() if t is not None else None


def _parse(data: bytes, name: str):
    try:
        return DET.fromstring(data)
    except DefusedXmlException as e:
        raise InvalidInput(f"{name}: XML entities / DTDs are not allowed ({type(e).__name__})") from None
    except ParseError as e:
        raise InvalidInput(f"{name}: not valid XML ({e})") from None


class Voc(Format):
    name = "voc"
    can_write = True

    def read(self, source: Source, ctx: ImageCtx) -> Dataset:
        xmls = [source.focus] if source.focus else source.with_suffix(".xml")
        if not xmls:
            raise InvalidInput("VOC import: no .xml annotation file found")
        split_of: dict[str, str] = {}
        for s in _SPLITS:
            for n in source.with_suffix(f"ImageSets/Main/{s}.txt"):
                for stem in source.read(n).decode("utf-8", "replace").split():
                    split_of[stem] = s
        ds = Dataset()
        for xf in xmls:
            root = _parse(source.read(xf), xf)
            if root.tag != "annotation":
                raise InvalidInput(f"{xf}: root element is <{root.tag}>, expected <annotation>")
            fname = _text(root, "filename")
            if not fname:
                raise InvalidInput(f"{xf}: missing <filename>")
            found = source.find(fname, near=xf, also=("JPEGImages", "../JPEGImages", "images"))
            if found is None:
                raise InvalidInput(f"{xf}: image file {fname!r} is not in the import")
            stem = posixpath.splitext(fname)[0]
            img = ctx.image(found, file_name=posixpath.normpath(fname.replace("\\", "/")),
                            split=split_of.get(stem))
            size = root.find("size")
            if size is not None:
                ctx.check_size(img, _text(size, "width"), _text(size, "height"), f"{xf}: <size>")
            for i, obj in enumerate(root.iter("object"), 1):
                where = f"{xf}: object {i}"
                bb = obj.find("bndbox")
                if bb is None or _text(obj, "name") is None:
                    raise InvalidInput(f"{where}: missing <name> or <bndbox>")
                coords = [_text(bb, t) for t in ("xmin", "ymin", "xmax", "ymax")]
                if None in coords:
                    raise InvalidInput(f"{where}: <bndbox> needs xmin, ymin, xmax, ymax")
                attrs = {}
                for a in _ATTRS:
                    v = _text(obj, a)
                    if v is not None and v != "":
                        attrs[a] = int(v) if v.lstrip("-").isdigit() else v
                img.boxes.append(ctx.box(img, _text(obj, "name"), *coords, where, attrs))
            ds.images.append(img)
        return ctx.finish(ds)

    def write(self, ds: Dataset, put) -> None:
        splits: dict[str, list[str]] = {}
        for im in ds.images:
            stem = posixpath.splitext(im.file_name)[0]
            root = Element("annotation")
            SubElement(root, "folder").text = "JPEGImages"
            SubElement(root, "filename").text = im.file_name
            size = SubElement(root, "size")
            for tag, v in (("width", im.width), ("height", im.height), ("depth", 3)):
                SubElement(size, tag).text = str(v)
            for b in im.boxes:
                obj = SubElement(root, "object")
                SubElement(obj, "name").text = b.label
                for a in _ATTRS:
                    if a in b.attributes:
                        SubElement(obj, a).text = str(b.attributes[a])
                bb = SubElement(obj, "bndbox")
                for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), (b.x1, b.y1, b.x2, b.y2)):
                    SubElement(bb, tag).text = repr(float(v))  # repr: exact round trip
            put(f"Annotations/{stem}.xml", tostring(root, encoding="utf-8", xml_declaration=True))
            put(f"JPEGImages/{im.file_name}", im.read())
            if im.split:
                splits.setdefault(im.split, []).append(stem)
        for s, stems in splits.items():
            put(f"ImageSets/Main/{s}.txt", ("\n".join(stems) + "\n").encode())
