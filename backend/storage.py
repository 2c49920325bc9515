"""Content-addressed image store, thumbnails, and validation of untrusted uploads.

Images live at `<data>/images/<sha[:2]>/<sha>.<ext>`: the same bytes are stored once however
many projects or file names point at them. Nothing is written until the bytes have been checked
(size, real type, pixel count before decoding, full decode to catch truncation).
"""
from __future__ import annotations

import hashlib
import io
import os
import posixpath
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage

from backend.errors import InvalidInput, TooLarge

ALLOWED_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "GIF": "gif", "TIFF": "tif"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    sha256: str
    ext: str
    width: int
    height: int


def check_image(data: bytes, name: str, *, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Validate untrusted image bytes; raise InvalidInput / TooLarge naming the file and the problem."""
    if len(data) > max_bytes:
        raise TooLarge(f"{name}: {len(data)} bytes is over the upload cap of {max_bytes} bytes")
    if not data:
        raise InvalidInput(f"{name}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data)) as im:
                fmt = im.format
                width, height = im.size
                # Check the header's pixel count before decoding: a bomb is cheap to send, dear to decode.
                if width * height > max_pixels:
                    raise TooLarge(
                        f"{name}: {width}x{height} = {width * height} pixels is over the cap of {max_pixels} "
                        "(possible decompression bomb)"
                    )
                if fmt not in ALLOWED_FORMATS:
                    raise InvalidInput(f"{name}: image type {fmt} is not supported")
                im.load()  # full decode: a truncated file fails here
    except (TooLarge, InvalidInput):
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as e:
        raise TooLarge(f"{name}: too many pixels (possible decompression bomb): {e}") from None
    except Exception as e:  # PIL raises many types for corrupt data
        raise InvalidInput(f"{name}: not a readable image ({type(e).__name__}: {e})") from None
    if width <= 0 or height <= 0:
        raise InvalidInput(f"{name}: image has no pixels")
    return CheckedImage(data, hashlib.sha256(data).hexdigest(), ALLOWED_FORMATS[fmt], width, height)


class ImageStore:
    def __init__(self, root: Path, thumbnail_size: int = 256):
        self.root = Path(root)
        self.thumbnail_size = thumbnail_size

    def path(self, sha256: str, ext: str) -> Path:
        return self.root / "images" / sha256[:2] / f"{sha256}.{ext}"

    def thumb_path(self, sha256: str) -> Path:
        return self.root / "thumbs" / sha256[:2] / f"{sha256}_{self.thumbnail_size}.jpg"

    def put(self, img: CheckedImage) -> bool:
        """Store the bytes; return True when they were new (so a failed import can undo exactly those)."""
        dest = self.path(img.sha256, img.ext)
        if dest.exists():
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(dest, img.data)
        return True

    def remove(self, sha256: str, ext: str) -> None:
        self.path(sha256, ext).unlink(missing_ok=True)
        self.thumb_path(sha256).unlink(missing_ok=True)

    def thumbnail(self, sha256: str, ext: str) -> Path:
        """Make the thumbnail once; later calls return the cached file."""
        out = self.thumb_path(sha256)
        if out.exists():
            return out
        with PILImage.open(self.path(sha256, ext)) as im:
            im = im.convert("RGB")
            im.thumbnail((self.thumbnail_size, self.thumbnail_size))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=85)
        out.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(out, buf.getvalue())
        return out


def _atomic_write(dest: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def safe_member_name(name: str) -> str:
    """Normalise an archive member name; reject absolute paths and `..` (zip-slip)."""
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        raise InvalidInput(f"archive member {name!r} has an absolute path")
    norm = posixpath.normpath(n)
    if norm == ".." or norm.startswith("../") or "/../" in f"/{norm}/":
        raise InvalidInput(f"archive member {name!r} points outside the archive ('..')")
    return norm


def read_zip(data: bytes, *, max_members: int, max_total_bytes: int) -> dict[str, bytes]:
    """Read a zip into memory as {safe relative path: bytes}, checking every name and size first."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise InvalidInput(f"not a valid zip archive: {e}") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > max_members:
            raise TooLarge(f"zip has {len(infos)} files, over the cap of {max_members}")
        names = [safe_member_name(i.filename) for i in infos]  # all checked before any is read
        total = sum(i.file_size for i in infos)
        if total > max_total_bytes:
            raise TooLarge(f"zip unpacks to {total} bytes, over the cap of {max_total_bytes}")
        out: dict[str, bytes] = {}
        for info, name in zip(infos, names):
            if name.startswith("__MACOSX/") or posixpath.basename(name).startswith("._"):
                continue
            try:
                # Read at most the declared size + 1: a lying header cannot inflate past the cap.
                with zf.open(info) as f:
                    blob = f.read(info.file_size + 1)
            except Exception as e:
                raise InvalidInput(f"zip member {name!r} cannot be read: {e}") from None
            if len(blob) > info.file_size:
                raise InvalidInput(f"zip member {name!r} is larger than its header says")
            out[name] = blob
        return out
