"""App factory: API routers under /api, the built front end at /."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from backend.api.guard import RequestGuard
from backend.api.limit import ConcurrencyLimit
from backend.config import Settings, get_settings
from backend.db import make_engine, make_sessionmaker, pool_capacity
from backend.errors import StudioError
from backend.storage import image_store

FRONTEND_DIST = Path(__file__).resolve().parent.parent / "frontend" / "dist"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = FastAPI(title="VLM Studio", version="0.1.0")
    app.state.settings = settings
    app.state.engine = make_engine(settings.resolved_database_url())
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    app.state.store = image_store(settings)

    @app.exception_handler(StudioError)
    async def _studio_error(_req: Request, exc: StudioError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_req: Request, exc: RequestValidationError) -> JSONResponse:
        # Leave out the echoed input: it can be huge (a 10k-character name) or not JSON at all
        # (NaN / Infinity in a number field), which made the default handler fail with a 500.
        errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.get("/api/health", tags=["health"])
    def health() -> dict:
        return {"status": "ok"}

    from backend.api import ROUTERS

    for router in ROUTERS:
        app.include_router(router, prefix="/api")
    app.add_middleware(RequestGuard)
    # as many requests in flight as the engine has connections (backend/api/limit.py)
    app.add_middleware(ConcurrencyLimit, limit=pool_capacity())
    document_errors(app)

    if FRONTEND_DIST.is_dir():
        mount_frontend(app, FRONTEND_DIST)
    return app


# Every /api operation may answer these (auth, roles, hidden rows, conflicts, caps, validation).
ERRORS = {400: "Malformed request", 401: "Missing or invalid API token", 403: "The caller's role is too low",
          404: "Not found (or not visible to the caller)", 409: "Conflict with the current state",
          413: "Over a size cap", 422: "Invalid input: `detail` names the field"}
_DETAIL = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}],
           "title": "Detail"}


def document_errors(app: FastAPI) -> None:
    """Declare the error answers in the OpenAPI schema: `detail` is a message, or (422 from request
    validation) a list of {loc, msg, type}; a 409 on a box also carries `current`."""
    base = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base()
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        comps["Error"] = {"type": "object", "title": "Error", "required": ["detail"], "properties": {"detail": _DETAIL}}
        if "HTTPValidationError" in comps:
            comps["HTTPValidationError"]["properties"]["detail"] = _DETAIL
        ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path, ops in schema.get("paths", {}).items():
            if path == "/api/health":
                continue
            for op in ops.values():
                responses = op.setdefault("responses", {})
                for code, text in ERRORS.items():
                    entry = responses.setdefault(str(code), {"description": text})
                    if code != 422:
                        entry.setdefault("content", ref)
        return schema

    app.openapi = openapi


def mount_frontend(app: FastAPI, dist: Path) -> None:
    """The built single-page app: its files as they are, and index.html for any other non-API path,
    so a reload or a shared link of a client-side route (/projects/3/images/7) opens the app."""
    static = StaticFiles(directory=dist)
    root = dist.resolve()

    # Every method, so an unknown /api path is a 404 whatever the method (not a 405 from this route).
    @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def spa(request: Request, path: str):
        if path == "api" or path.startswith("api/"):
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        if request.method not in ("GET", "HEAD"):
            return JSONResponse({"detail": "Method Not Allowed"}, status_code=405)
        file = (root / path).resolve()
        if path and file.is_file() and root in file.parents:
            return await static.get_response(path, request.scope)
        return FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})
