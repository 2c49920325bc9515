"""The request guard: checks every request once, before routing, for what no route can store.

- NUL characters in the path, the query string or any string (key or value) of a JSON body:
  PostgreSQL cannot store them in text or JSONB (SQLite can), so both databases answer the same 422
  naming the field instead of one of them failing in the driver.
- JSON bodies nested deeper than MAX_JSON_DEPTH: deep nesting makes recursive code (the JSON
  encoder, Pydantic, the database driver) overflow the stack; a 422 says so before any of it runs.

Multipart uploads are checked where they are read (file names in storage.safe_member_name).
"""
from __future__ import annotations

import json
from urllib.parse import parse_qsl, unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_DEPTH = 64  # request bodies: run configs and image meta are a few levels deep


def _problem(loc: list, msg: str, kind: str) -> dict:
    return {"loc": loc, "msg": msg, "type": kind}


def json_problem(doc: object, root: list, max_depth: int = MAX_JSON_DEPTH) -> dict | None:
    """The first NUL string or over-deep container in a parsed JSON document (iterative: no recursion)."""
    stack: list[tuple[object, list, int]] = [(doc, root, 1)]
    while stack:
        node, loc, depth = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return _problem(loc, "contains a NUL character (\\u0000), which cannot be stored", "nul_character")
            continue
        if isinstance(node, (dict, list)):
            if depth > max_depth:
                return _problem(loc, f"JSON is nested deeper than {max_depth} levels", "too_deep")
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for k, v in items:
                if isinstance(k, str) and "\x00" in k:
                    return _problem(loc + [k], "key contains a NUL character (\\u0000)", "nul_character")
                stack.append((v, loc + [k], depth + 1))
    return None


def _loads(body: bytes):
    try:
        return json.loads(body)
    except RecursionError:
        return RecursionError
    except ValueError:
        return None  # not JSON: the route's own validation names the problem


class RequestGuard:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = None
        if "\x00" in unquote(scope.get("path", "")):
            problem = _problem(["path"], "contains a NUL character", "nul_character")
        query = scope.get("query_string", b"").decode("latin-1")
        if problem is None and ("%00" in query or "\x00" in query):
            for k, v in parse_qsl(query, keep_blank_values=True):
                if "\x00" in k or "\x00" in v:
                    problem = _problem(["query", k.replace("\x00", "\\0")], "contains a NUL character", "nul_character")
                    break
        if problem is None and _is_json(dict(scope.get("headers") or [])):
            body, more = b"", True
            while more:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
            doc = _loads(body)
            if doc is RecursionError:
                problem = _problem(["body"], f"JSON is nested deeper than {MAX_JSON_DEPTH} levels", "too_deep")
            elif doc is not None:
                problem = json_problem(doc, ["body"])
            receive = _replay(body, receive)
        if problem is not None:
            await _send_json(send, 422, {"detail": [problem]})
            return
        await self.app(scope, receive, send)


def _is_json(headers: dict[bytes, bytes]) -> bool:
    """As FastAPI decides: no content type, application/json or any `+json` type is parsed as JSON."""
    ctype = headers.get(b"content-type")
    if ctype is None:
        return headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
    media = ctype.split(b";")[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _send_json(send: Send, status: int, content: dict) -> None:
    data = json.dumps(content).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
