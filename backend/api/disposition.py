"""Content-Disposition for every download: one builder, so no route pastes raw values into a header.

RFC 6266: an ASCII `filename` fallback (anything outside [A-Za-z0-9._-] becomes `_`, so no quote,
semicolon or control character can end the value or add a parameter) and, when the name is not
plain ASCII, `filename*=UTF-8''<percent-encoded>` with the real name.
"""
from __future__ import annotations

import re
from urllib.parse import quote

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def content_disposition(name: str, kind: str = "attachment") -> str:
    fallback = _UNSAFE.sub("_", name).strip("._") or "download"
    header = f'{kind}; filename="{fallback}"'
    if fallback != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header
