"""Question families, one file each, and THE registry. A family: `generate(view, rng, options)`
returning `QAItem`s (see base.py for the family-neutral storage convention) and its option defaults."""
from __future__ import annotations

from backend.errors import InvalidInput
from backend.qa import counting, detection, identity, race, region, spatial
from backend.qa.base import Family

FAMILIES: dict[str, Family] = {
    "identity": Family(identity.generate, identity.DEFAULTS),
    "counting": Family(counting.generate, counting.DEFAULTS),
    "spatial": Family(spatial.generate, spatial.DEFAULTS),
    "race": Family(race.generate, race.DEFAULTS),
    "region": Family(region.generate, region.DEFAULTS),
    "detection": Family(detection.generate, detection.DEFAULTS),
}


def check_families(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise InvalidInput(f"families: unknown family {', '.join(map(repr, unknown))} (known: {', '.join(FAMILIES)})")
    if not names:
        raise InvalidInput("families: give at least one family")
    return list(dict.fromkeys(names))


def resolve_options(family: str, given: dict | None, negatives_ratio: float) -> dict:
    """The family's defaults overlaid with `given`, type-checked against the defaults; errors name
    the field (`options.spatial.max_pairs`)."""
    defaults = FAMILIES[family].defaults
    given = given or {}
    if not isinstance(given, dict):
        raise InvalidInput(f"options.{family}: must be an object")
    out = dict(defaults)
    for k, v in given.items():
        where = f"options.{family}.{k}"
        if k not in defaults:
            raise InvalidInput(f"{where}: unknown option (known: {', '.join(defaults)})")
        d = defaults[k]
        if isinstance(d, bool):
            ok = isinstance(v, bool)
        elif isinstance(d, int):
            ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10_000
        else:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1e6 and v == v
        if not ok:
            raise InvalidInput(f"{where}: expected a {'boolean' if isinstance(d, bool) else 'non-negative number'}"
                               f" like {d!r}, got {v!r}")
        out[k] = float(v) if isinstance(d, float) else v
    if family == "region":
        if not out["min_size"] <= out["max_size"] <= 1:
            raise InvalidInput("options.region.max_size: need min_size <= max_size <= 1")
        if out["partial"] > 1:
            raise InvalidInput("options.region.partial: a share between 0 and 1")
    if family == "spatial" and out["min_gap"] >= 1:
        raise InvalidInput("options.spatial.min_gap: a fraction of the image side below 1")
    out["negatives_ratio"] = negatives_ratio
    return out
