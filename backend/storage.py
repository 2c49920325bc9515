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
import re
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageOps

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
    """Validate untrusted image bytes; raise InvalidInput / TooLarge naming the file and the problem.

    An image with an EXIF orientation is stored turned upright (pixels transposed, tag dropped), so
    its width, height and boxes mean the pixels every reader sees, whether it honours EXIF or not."""
    if len(data) > max_bytes:
        raise TooLarge(f"{name}: {len(data)} bytes is over the upload cap of {max_bytes} bytes")
    if not data:
        raise InvalidInput(f"{name}: the file is empty")
    bomb = TooLarge(f"{name}: too many pixels for the cap of {max_pixels} (STUDIO_MAX_IMAGE_PIXELS); "
                    "possible decompression bomb")
    try:
        with warnings.catch_warnings():
            # Our own cap (below, from the header) decides; Pillow's warning threshold is not ours.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data)) as im:
                fmt = im.format
                width, height = im.size
                # Check the header's pixel count before decoding: a bomb is cheap to send, dear to decode.
                if width * height > max_pixels:
                    raise TooLarge(
                        f"{name}: {width}x{height} = {width * height} pixels is over the cap of {max_pixels} "
                        "(STUDIO_MAX_IMAGE_PIXELS; possible decompression bomb)"
                    )
                if fmt not in ALLOWED_FORMATS:
                    raise InvalidInput(f"{name}: image type {fmt} is not supported")
                im.load()  # full decode: a truncated file fails here
                upright = _upright(im, fmt)
    except (TooLarge, InvalidInput):
        raise
    except PILImage.DecompressionBombError:
        raise bomb from None
    except PILImage.UnidentifiedImageError:
        raise InvalidInput(f"{name}: not a readable image (unknown or unsupported file type)") from None
    except Exception as e:  # PIL raises many types for corrupt data
        raise InvalidInput(f"{name}: not a readable image ({type(e).__name__}: {_no_address(str(e))})") from None
    if width <= 0 or height <= 0:
        raise InvalidInput(f"{name}: image has no pixels")
    if upright is not None:
        data, (width, height) = upright
    return CheckedImage(data, hashlib.sha256(data).hexdigest(), ALLOWED_FORMATS[fmt], width, height)


def _upright(im: PILImage.Image, fmt: str) -> tuple[bytes, tuple[int, int]] | None:
    """The image re-encoded with its EXIF orientation applied, or None when it has none."""
    try:
        orientation = im.getexif().get(_ORIENTATION, 1)
    except Exception:
        return None
    if orientation in (None, 1) or fmt not in ("JPEG", "PNG", "WEBP", "TIFF"):
        return None
    turned = ImageOps.exif_transpose(im)
    buf = io.BytesIO()
    if fmt == "JPEG":
        turned.save(buf, "JPEG", quality=95, exif=turned.getexif())
    else:
        turned.save(buf, fmt)
    return buf.getvalue(), turned.size


_ORIENTATION = 0x0112
_ADDRESS = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")


def _no_address(text: str) -> str:
    """Library messages may print `<_io.BytesIO object at 0x7f...>`: a memory address says nothing to a user."""
    return _ADDRESS.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)


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
    if "\x00" in name:
        raise InvalidInput(f"file name {name!r} contains a NUL character")
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        raise InvalidInput(f"archive member {name!r} has an absolute path")
    norm = posixpath.normpath(n)
    if norm == ".." or norm.startswith("../") or "/../" in f"/{norm}/":
        raise InvalidInput(f"archive member {name!r} points outside the archive ('..')")
    return norm


# A member inflating more than this many times its compressed size is refused unread (zip bombs
# reach 1000:1; images barely compress, annotation text stays well under it). Small members are
# exempt: a short text file of repeated lines may legitimately compress that well.
MAX_ZIP_RATIO = 200
RATIO_EXEMPT_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024


def read_zip(data: bytes, *, max_members: int, max_total_bytes: int, max_member_bytes: int | None = None,
             keep=None, skipped: list[str] | None = None) -> dict[str, bytes]:
    """Read a zip into memory as {safe relative path: bytes}, checking every name and declared size
    first, then inflating each member in chunks against its own cap, the total cap and the declared
    size, so a lying or bomb-like member costs at most one chunk over a cap, never its full size.
    `keep(name)` False: the member is not inflated at all, only its name added to `skipped`."""
    member_cap = max_total_bytes if max_member_bytes is None else max_member_bytes
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError) as e:
        raise InvalidInput(f"not a valid zip archive: {e}") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > max_members:
            raise TooLarge(f"zip has {len(infos)} files, over the cap of {max_members}")
        names = [safe_member_name(i.filename) for i in infos]  # all checked before any is read
        chosen = []
        for info, name in zip(infos, names):
            if name.startswith("__MACOSX/") or posixpath.basename(name).startswith("._"):
                continue
            if keep is not None and not keep(name):
                if skipped is not None:
                    skipped.append(name)
                continue
            if info.file_size > member_cap:
                raise TooLarge(f"zip member {name!r} unpacks to {info.file_size} bytes, over the cap of "
                               f"{member_cap} bytes per file")
            if info.file_size > RATIO_EXEMPT_BYTES and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
                raise TooLarge(f"zip member {name!r} inflates {info.file_size // max(info.compress_size, 1)}:1 "
                               f"({info.compress_size} -> {info.file_size} bytes), over the limit of "
                               f"{MAX_ZIP_RATIO}:1 (possible zip bomb)")
            chosen.append((info, name))
        total = sum(i.file_size for i, _ in chosen)
        if total > max_total_bytes:
            raise TooLarge(f"zip unpacks to {total} bytes, over the cap of {max_total_bytes}")
        out: dict[str, bytes] = {}
        for info, name in chosen:
            out[name] = _inflate(zf, info, name)
        return out


def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    """A member's bytes, read in chunks; more than its header declares (checked above against the
    caps) stops the read at once: a lying header cannot inflate past them."""
    buf = bytearray()
    try:
        with zf.open(info) as f:
            while chunk := f.read(min(_CHUNK, info.file_size + 1 - len(buf))):
                buf += chunk
                if len(buf) > info.file_size:
                    raise InvalidInput(f"zip member {name!r} is larger than its header says")
    except InvalidInput:
        raise
    except Exception as e:
        raise InvalidInput(f"zip member {name!r} cannot be read: {_no_address(str(e))}") from None
    return bytes(buf)
