"""Small jobs on the worker queue that need no table (model builds, try-it answers): one JSON state
file per job in a folder of the data dir, merged and replaced atomically by whoever writes it, so a
reader never sees half a file."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path


def read(folder: Path, name: str) -> dict | None:
    try:
        return json.loads((folder / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def write(folder: Path, name: str, **values) -> dict:
    """Merge `values` into the job's state (stamped `updated`), atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    job = read(folder, name) or {"name": name, "log": []}
    job.update(values, updated=time.time())
    tmp = folder / f"{name}.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(job))
    tmp.replace(folder / f"{name}.json")
    return job
