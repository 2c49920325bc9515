"""The model catalogue: every base model a worker can load, and the model-build jobs.

- local: `save_pretrained` folders under `<data_dir>/models` (family from config.json's model_type,
  size on disk, parameter count from the safetensors headers, and, for a model pre-trained here,
  what it was pre-trained on: its `studio_pretraining.json`);
- the demo's model: the shipped base (backend/demo_data/model, pre-trained on real SuperTuxKart
  frames by worker/demo_model.py), copied into `<data_dir>/models` on first look; a build job
  re-trains it from scratch;
- hub presets, one per family: usable on a worker that reaches the model hub or holds a local copy.

A build job (the demo model) is a Celery task on the gpu queue like a run; its state is one JSON
file per job under `<data_dir>/models/.jobs/` (written atomically by the worker, read here), so the
catalogue needs no table. No torch here: the API imports this module.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import time
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from backend import jobfiles
from backend.config import Settings
from backend.errors import InvalidInput

# Family name -> config.json model_types (one table: backend.runs checks launches against it).
from backend.runs import FAMILY_MODEL_TYPES

HUB_PRESETS: list[dict] = [
    {"id": "google/paligemma2-3b-pt-224", "family": "paligemma", "parameters": 3_030_000_000},
    {"id": "Qwen/Qwen2-VL-2B-Instruct", "family": "qwen2_vl", "parameters": 2_210_000_000},
    {"id": "Qwen/Qwen2.5-VL-3B-Instruct", "family": "qwen2_5_vl", "parameters": 3_750_000_000},
    {"id": "HuggingFaceTB/SmolVLM-256M-Instruct", "family": "smolvlm", "parameters": 256_000_000},
]
HUB_NOTE = "needs the model hub or a local copy"
DEMO_JOB = "demo"
DEMO_PREFIX = "tiny-paligemma-stk-"
DEMO_SHIPPED = Path(__file__).resolve().parent / "demo_data" / "model"  # weights + card, see its README.md
JOB_STALE_SECONDS = 300  # a running job whose worker wrote nothing for this long is reported lost


def models_dir(settings: Settings) -> Path:
    return settings.data_dir / "models"


def jobs_dir(settings: Settings) -> Path:
    return models_dir(settings) / ".jobs"


def family_of(model_type: str | None) -> str | None:
    for fam, types in FAMILY_MODEL_TYPES.items():
        if model_type in types:
            return fam
    return None


def _safetensors_params(path: Path) -> int:
    """Parameters in one .safetensors file, from its JSON header (8-byte length, then the header)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    total = 0
    for k, v in header.items():
        if k != "__metadata__":
            c = 1
            for d in v["shape"]:
                c *= d
            total += c
    return total


def describe_folder(path: Path) -> dict | None:
    """A catalogue entry for a save_pretrained folder; None if it is not one."""
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        return None
    try:
        model_type = json.loads(cfg_file.read_text()).get("model_type")
    except (OSError, ValueError):
        return None
    files = [p for p in path.rglob("*") if p.is_file()]
    params = sum(_safetensors_params(p) for p in files if p.suffix == ".safetensors") or None
    pre = None
    if (path / "studio_pretraining.json").is_file():
        try:
            pre = json.loads((path / "studio_pretraining.json").read_text())
        except ValueError:
            pre = None
    family = family_of(model_type)
    return {
        "id": str(path.resolve()), "name": path.name, "source": "local", "family": family, "model_type": model_type,
        "status": "ready" if family else "unsupported", "size_bytes": sum(p.stat().st_size for p in files),
        "parameters": params,
        "pretrained": ({"data": pre.get("data"), "steps": (pre.get("recipe") or {}).get("steps"),
                        "samples": pre.get("samples"), "seconds": pre.get("seconds"),
                        "cpu_seconds": pre.get("cpu_seconds"), "tracks": sorted(pre.get("tracks") or {}),
                        "never_seen": pre.get("never_seen") or [], "held_out": pre.get("held_out") or {}}
                       if pre else None),
        # run settings the model was pre-trained with (the run form applies them when it is picked)
        "suggested": _suggested(pre),
        "note": None if family else f"model_type {model_type!r} is not one of the studio's families",
    }


def local_models(settings: Settings) -> list[dict]:
    root = models_dir(settings)
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.iterdir()):
        if p.is_dir() and not p.name.startswith(".") and not p.name.endswith(".tmp"):
            d = describe_folder(p)
            if d is not None:
                out.append(d)
    return out


# ---------------------------------------------------------------- build jobs
def read_job(settings: Settings, name: str) -> dict | None:
    job = jobfiles.read(jobs_dir(settings), name)
    if job and job.get("state") == "running" and time.time() - job.get("updated", 0) > JOB_STALE_SECONDS:
        job = {**job, "state": "failed", "error": "the worker building it stopped reporting (lost); build again"}
    return job


def write_job(settings: Settings, name: str, **values) -> dict:
    return jobfiles.write(jobs_dir(settings), name, **values)


def queue_demo_build(settings: Settings, recipe: dict | None = None) -> dict:
    """Queue the demo model's build (a Celery task on the gpu queue); a build already queued or
    running is returned as it is. `recipe` overrides settings.demo_recipe (e.g. fewer steps)."""
    from worker.celery_app import producer  # celery only, no torch

    job = read_job(settings, DEMO_JOB)
    if job and job.get("state") in ("queued", "running"):
        return job
    recipe = {**settings.demo_recipe, **(recipe or {})}
    job = write_job(settings, DEMO_JOB, state="queued", progress=0.0, error=None, path=None, recipe=recipe,
                    queued_at=time.time(), started_at=None, ended_at=None, eta_seconds=None,
                    log=[f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} demo model build queued"])
    producer(settings).send_task(BUILD_TASK, args=[DEMO_JOB, recipe], queue=settings.queue_prefix + "gpu")
    return job


BUILD_TASK = "studio.build_model"


def shipped_demo_card() -> dict | None:
    f = DEMO_SHIPPED / "studio_pretraining.json"
    return json.loads(f.read_text()) if f.is_file() else None


def install_shipped_demo(models: Path) -> Path | None:
    """The shipped demo base copied (once, atomically) to `<data_dir>/models/<DEMO_PREFIX><sha12>/`:
    a local model like any other from then on. None when the checkout ships no weights."""
    card = shipped_demo_card()
    if card is None:
        return None
    out = Path(models) / f"{DEMO_PREFIX}{card['sha256'][:12]}"
    if not (out / "config.json").is_file():
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(DEMO_SHIPPED, tmp)
        try:
            tmp.rename(out)
        except OSError:  # another process installed it first
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _suggested(card: dict | None) -> dict | None:
    """A studio-pre-trained model's fine-tune settings (worker.demo_recipe.finetune_settings), from
    its card's recipe; None for other models (or a card whose recipe is unreadable)."""
    if not card or not isinstance(card.get("recipe"), dict):
        return None
    from worker.demo_recipe import finetune_settings

    try:
        return finetune_settings(card["recipe"])
    except (TypeError, ValueError):
        return None


def _demo_entry(settings: Settings, local: list[dict], job: dict | None) -> dict:
    ready = [m for m in local if m["name"].startswith(DEMO_PREFIX) and m["pretrained"]]
    if not ready and install_shipped_demo(models_dir(settings)) is not None:
        ready = [m for m in local_models(settings) if m["name"].startswith(DEMO_PREFIX) and m["pretrained"]]
    newest = max(ready, key=lambda m: Path(m["id"]).stat().st_mtime) if ready else None
    entry = {
        "id": newest["id"] if newest else "demo", "name": "Demo: tiny PaliGemma pre-trained on real SuperTuxKart frames",
        "source": "demo", "family": "paligemma", "model_type": "paligemma",
        "size_bytes": newest["size_bytes"] if newest else None,
        "parameters": newest["parameters"] if newest else None,
        "pretrained": newest["pretrained"] if newest else None, "job": job,
        "suggested": newest["suggested"] if newest else None,
    }
    building = job is not None and job.get("state") in ("queued", "running")
    if newest and not building:
        entry.update(status="ready", note=f"pre-trained on {newest['pretrained']['data']}; never saw the demo's "
                     "tracks; fine-tune it on your frames")
    elif building:
        eta = job.get("eta_seconds")
        entry.update(status="building", note=f"being prepared ({job['state']}, {round(100 * (job.get('progress') or 0))} %"
                     + (f", ready in about {_dur(eta)}" if eta else "") + ")")
    elif job and job.get("state") == "failed":
        entry.update(status="failed", note=f"the build failed: {job.get('error')}")
    else:
        entry.update(status="not_built", note="not built yet: `studio models build demo` or Build on the Models page")
    return entry


def _dur(s: float) -> str:
    s = int(s)
    return f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


def catalogue(settings: Settings) -> list[dict]:
    """Everything a run can start from: the demo model, local folders, hub presets."""
    # The job before the folders: a build moves its model in, then marks the job succeeded, so a
    # "succeeded" read first means the scan sees the model. The other order could read the folders
    # before the move and the job after it, call the demo "not built", and queue an hour's rebuild.
    job = read_job(settings, DEMO_JOB)
    local = local_models(settings)
    demo = _demo_entry(settings, local, job)
    others = [m for m in local if m["id"] != demo["id"]]
    hub = []
    for p in HUB_PRESETS:
        cached = hub_cached(p["id"])
        hub.append({"id": p["id"], "name": p["id"], "source": "hub", "family": p["family"],
                    "model_type": FAMILY_MODEL_TYPES[p["family"]][0], "status": "ready" if cached else "needs_hub",
                    "size_bytes": None, "parameters": p["parameters"], "pretrained": None, "suggested": None,
                    "note": "in the local hub cache" if cached else HUB_NOTE})
    return [demo] + others + hub


# ---------------------------------------------------------------- hub reachability
def hub_cached(hub_id: str) -> bool:
    """A snapshot of `hub_id` in the local Hugging Face cache (HF_HUB_CACHE / HF_HOME)."""
    root = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub")
    snaps = Path(root) / ("models--" + hub_id.replace("/", "--")) / "snapshots"
    return snaps.is_dir() and any((s / "config.json").is_file() for s in snaps.iterdir())


def _offline_env() -> bool:
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@lru_cache(maxsize=4)
def _reach(host: str, port: int, minute: int, timeout: float) -> bool:  # cached per minute
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable(timeout: float = 1.5) -> tuple[bool, str]:
    """(reachable, how it was told): HF_HUB_OFFLINE, or a TCP connect to the hub (HF_ENDPOINT)."""
    if _offline_env():
        return False, "HF_HUB_OFFLINE is set"
    u = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = u.hostname or "huggingface.co", u.port or (443 if u.scheme == "https" else 80)
    ok = _reach(host, port, int(time.time() // 60), timeout)
    return ok, f"{host}:{port} {'answered' if ok else f'did not answer within {timeout:g} s'}"


def unreachable_message(settings: Settings, base_model: str, how: str) -> str:
    local = [m["id"] for m in local_models(settings) if m["status"] == "ready"]
    have = ("local models you can use instead: " + ", ".join(local)) if local else \
        "no local model exists yet (build the demo model on the Models page or `studio models build demo`)"
    return (f"config.base_model: tried to load {base_model!r} from the model hub, but the hub is unreachable "
            f"({how}) and it is not in the local cache; {have}.")


def is_hub_id(base_model: str) -> bool:
    """`org/name` that is no local path (the rule backend.runs.check_model applies)."""
    p = Path(base_model).expanduser()
    return not (p.exists() or p.is_absolute() or base_model.startswith((".", "~")) or base_model.count("/") != 1)


def require_reachable(settings: Settings, base_model: str) -> None:
    """A hub id that is neither cached nor reachable is refused now (422) with one sentence, not
    after a worker spent its retries on it. Anything else (a local folder, present or not) passes."""
    if not is_hub_id(base_model) or hub_cached(base_model):
        return
    ok, how = hub_reachable()
    if not ok:
        raise InvalidInput(unreachable_message(settings, base_model, how))
