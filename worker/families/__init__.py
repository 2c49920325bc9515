"""Family registry: name -> Family class; `get_family` returns a fresh instance (Qwen2.5-VL keeps
per-processor resize settings on its instance, so instances are not shared)."""
from __future__ import annotations

from worker.families.base import Family, read_model_type
from worker.families.paligemma import PaliGemma
from worker.families.qwen2_5_vl import Qwen25VL
from worker.families.qwen2_vl import Qwen2VL
from worker.families.smolvlm import SmolVLM
from worker.types import FamilyMismatch, ModelNotFound

REGISTRY: dict[str, type[Family]] = {f.name: f for f in (PaliGemma, Qwen2VL, Qwen25VL, SmolVLM)}


def get_family(name: str) -> Family:
    try:
        return REGISTRY[name]()
    except KeyError:
        raise FamilyMismatch(f"unknown model family {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def detect_family(model_path: str) -> Family:
    """The family whose model_types contain the folder's config.model_type."""
    model_type = read_model_type(str(model_path))
    if model_type is None:
        raise ModelNotFound(f"{model_path} is not a local model folder; name the family explicitly for hub ids")
    for cls in REGISTRY.values():
        if model_type in cls.model_types:
            return cls()
    raise FamilyMismatch(f"model {model_path} has config.model_type {model_type!r}, which no family handles "
                         f"(families: {', '.join(sorted(REGISTRY))})")


__all__ = ["Family", "REGISTRY", "get_family", "detect_family"]
