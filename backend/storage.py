"""Object storage (the data directory or S3), the content-addressed image store, thumbnails, and
validation of untrusted uploads.

Images live at `images/<sha[:2]>/<sha>.<ext>` in the store: the same bytes are stored once however
many projects or file names point at them. Run outputs (checkpoints, adapters, merged models) live
under `runs/<id>/`. Nothing is written until the bytes have been checked
(size, real type, pixel count before decoding, full decode to catch truncation).
"""
from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import shutil
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


class LocalStorage:
    """Objects are files under `root` (the data directory by default): a key is a relative path."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStorage({self.root})"

    def local(self, key: str) -> Path:
        return self.root / key

    def ref(self, key: str) -> str:
        """What a row stores to name this object or folder (an absolute path here, as before)."""
        return str(self.local(key).resolve())

    def exists(self, key: str) -> bool:
        return self.local(key).exists()

    def put_bytes(self, key: str, data: bytes) -> None:
        dest = self.local(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(dest, data)

    def fetch(self, key: str) -> Path | None:
        p = self.local(key)
        return p if p.exists() else None

    def delete(self, key: str) -> None:
        self.local(key).unlink(missing_ok=True)

    def push_dir(self, key: str, src: Path, *, mirror: bool = False, last: str | None = None) -> None:
        dest = self.local(key)
        if Path(src).resolve() == dest.resolve():
            return  # the worker wrote it in place
        if mirror:
            shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, dirs_exist_ok=True)

    def pull_dir(self, key: str, dest: Path) -> None:
        src = self.local(key)
        if src.is_dir() and src.resolve() != Path(dest).resolve():
            shutil.copytree(src, dest, dirs_exist_ok=True)

    def fetch_dir(self, ref: str) -> Path:
        return Path(ref)


class S3Storage:
    """Objects in `s3://bucket/prefix/<key>` on any S3-compatible store, through boto3 (endpoint and
    credentials from the standard AWS variables: AWS_ENDPOINT_URL_S3 for MinIO, AWS_ACCESS_KEY_ID,
    ...). What is read is cached under `cache_dir/<key>`: images and thumbnails are content-addressed
    and run outputs are written once, so a cached copy never goes stale."""

    def __init__(self, url: str, cache_dir: Path):
        import boto3
        from botocore.config import Config

        rest = url[len("s3://"):]
        self.bucket, _, prefix = rest.partition("/")
        if not self.bucket:
            raise ValueError(f"STUDIO_STORAGE_URL {url!r}: no bucket (use s3://bucket/prefix)")
        self.prefix = prefix.strip("/")
        self.cache = Path(cache_dir)
        self.client = boto3.client("s3", config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                                       max_pool_connections=32))

    def __repr__(self) -> str:
        return f"S3Storage(s3://{self.bucket}/{self.prefix})"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def local(self, key: str) -> Path:
        return self.cache / key

    def ref(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        # upload_fileobj streams (multipart above 8 MB); the object appears whole or not at all
        self.client.upload_fileobj(io.BytesIO(data), self.bucket, self._key(key))
        dest = self.local(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(dest, data)

    def fetch(self, key: str) -> Path | None:
        """The object as a local file (downloaded once into the cache), or None when it is not stored."""
        from botocore.exceptions import ClientError

        dest = self.local(key)
        if dest.exists():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        os.close(fd)
        try:
            self.client.download_file(self.bucket, self._key(key), tmp)
            os.replace(tmp, dest)
        except ClientError as e:
            Path(tmp).unlink(missing_ok=True)
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        self.local(key).unlink(missing_ok=True)

    def _list(self, key: str) -> dict[str, int]:
        """{key relative to `key`/: size} of every object under the folder `key`."""
        base = self._key(key).rstrip("/") + "/"
        out: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            for o in page.get("Contents", []):
                out[o["Key"][len(base):]] = o["Size"]
        return out

    def push_dir(self, key: str, src: Path, *, mirror: bool = False, last: str | None = None) -> None:
        """Upload the folder's files (those named `last` after the others: a checkpoint's state file,
        so a pull never takes a half-uploaded checkpoint); `mirror` also deletes objects the folder
        no longer has."""
        src = Path(src)
        files = sorted((f for f in src.rglob("*") if f.is_file() and ".tmp" not in f.relative_to(src).as_posix()),
                       key=lambda f: (f.name == last, f.as_posix()))
        remote = self._list(key)
        for f in files:
            rel = f.relative_to(src).as_posix()
            if remote.get(rel) != f.stat().st_size:
                self.client.upload_file(str(f), self.bucket, self._key(f"{key}/{rel}"))
        if mirror:
            keep = {f.relative_to(src).as_posix() for f in files}
            for rel in sorted(set(remote) - keep):
                self.client.delete_object(Bucket=self.bucket, Key=self._key(f"{key}/{rel}"))

    def pull_dir(self, key: str, dest: Path) -> None:
        """Download the folder's objects that `dest` lacks (or has at another size)."""
        dest = Path(dest)
        for rel, size in self._list(key).items():
            f = dest / rel
            if f.is_file() and f.stat().st_size == size:
                continue
            f.parent.mkdir(parents=True, exist_ok=True)
            tmp = f.with_name(f".tmp-{f.name}")
            self.client.download_file(self.bucket, self._key(f"{key}/{rel}"), str(tmp))
            os.replace(tmp, f)

    def fetch_dir(self, ref: str) -> Path:
        """A folder named by `ref` (as ref() wrote it) as a local folder in the cache."""
        if not ref.startswith("s3://"):
            return Path(ref)  # a row written before the store moved to S3
        bucket, _, full = ref[len("s3://"):].partition("/")
        if bucket != self.bucket or not full.startswith(self._key("")):
            raise ValueError(f"{ref} is not in this store ({self!r})")
        key = full[len(self._key("")):].strip("/")
        self.pull_dir(key, self.local(key))
        return self.local(key)


Storage = LocalStorage | S3Storage


def open_storage(settings) -> Storage:
    """STUDIO_STORAGE_URL: unset = the data directory; a folder; or s3://bucket/prefix (the data
    directory then only caches what this process read)."""
    url = settings.storage_url
    if url and url.startswith("s3://"):
        return S3Storage(url, settings.data_dir / "cache")
    if url and "://" in url and not url.startswith("file://"):
        raise ValueError(f"STUDIO_STORAGE_URL {url!r}: use a folder, file:///folder or s3://bucket/prefix")
    return LocalStorage(Path(url.removeprefix("file://")) if url else settings.data_dir)


def image_store(settings) -> "ImageStore":
    return ImageStore(open_storage(settings), settings.thumbnail_size)


class ImageStore:
    """Images (`images/<sha[:2]>/<sha>.<ext>`) and thumbnails on a Storage; `path()` hands back a
    local file (a cached copy when the store is S3)."""

    def __init__(self, storage: Storage | Path | str, thumbnail_size: int = 256):
        self.storage = storage if isinstance(storage, (LocalStorage, S3Storage)) else LocalStorage(Path(storage))
        self.thumbnail_size = thumbnail_size

    @property
    def root(self) -> Path:
        return self.storage.root if isinstance(self.storage, LocalStorage) else self.storage.cache

    @staticmethod
    def key(sha256: str, ext: str) -> str:
        return f"images/{sha256[:2]}/{sha256}.{ext}"

    def thumb_key(self, sha256: str) -> str:
        return f"thumbs/{sha256[:2]}/{sha256}_{self.thumbnail_size}.jpg"

    def path(self, sha256: str, ext: str) -> Path:
        """A local file of the image (it does not exist when the image is not stored)."""
        key = self.key(sha256, ext)
        return self.storage.fetch(key) or self.storage.local(key)

    def has(self, sha256: str, ext: str) -> bool:
        return self.storage.exists(self.key(sha256, ext))

    def thumb_path(self, sha256: str) -> Path:
        return self.storage.local(self.thumb_key(sha256))

    def put(self, img: CheckedImage) -> bool:
        """Store the bytes; return True when they were new (so a failed import can undo exactly those)."""
        key = self.key(img.sha256, img.ext)
        if self.storage.exists(key):
            return False
        self.storage.put_bytes(key, img.data)
        return True

    def remove(self, sha256: str, ext: str) -> None:
        self.storage.delete(self.key(sha256, ext))
        self.storage.delete(self.thumb_key(sha256))

    def prefetch(self, items, threads: int = 16) -> None:
        """Bring many images into the local cache at once (a no-op for a local store)."""
        if isinstance(self.storage, LocalStorage):
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda se: self.path(*se), items))

    def thumbnail(self, sha256: str, ext: str) -> Path:
        """Make the thumbnail once; later calls return the stored (or cached) file."""
        key = self.thumb_key(sha256)
        out = self.storage.fetch(key)
        if out is not None:
            return out
        with PILImage.open(self.path(sha256, ext)) as im:
            im = im.convert("RGB")
            im.thumbnail((self.thumbnail_size, self.thumbnail_size))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=85)
        self.storage.put_bytes(key, buf.getvalue())
        return self.storage.local(key)


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
