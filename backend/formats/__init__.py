"""Import / export formats. Adding one = a new file with a `Format` subclass + one line here."""
from __future__ import annotations

from backend.errors import InvalidInput
from backend.formats.base import Format
from backend.formats.coco import Coco
from backend.formats.cvat import Cvat
from backend.formats.detjson import DetJson
from backend.formats.hf_parquet import HfParquet
from backend.formats.labelstudio import LabelStudio
from backend.formats.llamafactory import LlamaFactory
from backend.formats.msswift import MsSwift
from backend.formats.supertuxkart import SuperTuxKart
from backend.formats.voc import Voc
from backend.formats.yolo import Yolo

FORMATS: dict[str, Format] = {
    "coco": Coco(),
    "yolo": Yolo(),
    "voc": Voc(),
    "supertuxkart": SuperTuxKart(),
    "detjson": DetJson(),
    "hf_parquet": HfParquet(),
    "labelstudio": LabelStudio(),
    "cvat": Cvat(),
    "msswift": MsSwift(),
    "llamafactory": LlamaFactory(),
}


def get_format(name: str, *, writable: bool = False) -> Format:
    fmt = FORMATS.get((name or "").strip().lower())
    if fmt is None or (writable and not fmt.can_write):
        ok = sorted(n for n, f in FORMATS.items() if f.can_write or not writable)
        raise InvalidInput(f"unknown {'export' if writable else 'import'} format {name!r}; use one of {ok}")
    return fmt
