"""REST routers, one file per resource. `ROUTERS` is the registry `main.py` mounts under /api."""
from fastapi import APIRouter

ROUTERS: list[APIRouter] = []
