"""REST routers, one file per resource. `ROUTERS` is the registry `main.py` mounts under /api."""
from fastapi import APIRouter

ROUTERS: list[APIRouter] = []

from backend.api import boxes, images, labels, projects, users  # noqa: E402

ROUTERS += [users.router, projects.router, labels.router, images.router, boxes.router]

from backend.api import imports  # noqa: E402

ROUTERS.append(imports.router)

from backend.api import qa, splits  # noqa: E402

ROUTERS += [qa.router, splits.router]

from backend.api import runs  # noqa: E402

ROUTERS.append(runs.router)

from backend.api import models  # noqa: E402

ROUTERS.append(models.router)

from backend.api import tryit  # noqa: E402

ROUTERS.append(tryit.router)
from backend.api import loop  # noqa: E402

ROUTERS.append(loop.router)
