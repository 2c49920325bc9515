"""Train/val/test splits recorded on the images (QA pairs inherit them by join), without leakage.

Modes:
- image: images shuffled with the seed and cut by the ratios;
- group: whole groups of a meta key (default `race_id`: neighbouring frames of one race) are
  assigned, each to the split furthest below its target share of images; an image without the key
  is a group of its own;
- track: whole tracks (meta key `track` unless `key` says otherwise) held out by name
  (`held_out={"test": ["lighthouse"]}`, the rest is train), or, with ratios, split as groups.
Deterministic for a seed: groups are ordered by their key before the seeded shuffle, never by id.
`check` lists every group whose images sit in two or more splits (images without a split are
ignored); `assert_no_leakage` raises `SplitLeak` on one, so a training run can refuse it.
"""
from __future__ import annotations

import json
import random
from collections import Counter, defaultdict

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.errors import Conflict, InvalidInput
from backend.models import Image

DEFAULT_RATIOS = {"train": 0.8, "val": 0.1, "test": 0.1}
_CHUNK = 1000


class SplitLeak(Conflict):
    """A group (race, track, sequence) has images in more than one split."""


def _group_value(meta: object, key: str) -> str | None:
    v = meta.get(key) if isinstance(meta, dict) else None
    if v is None or v == "":
        return None
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def _load(session: Session, project_id: int, key: str) -> list[tuple[int, str, str | None, str | None]]:
    """(id, file_name, group or None, split) of every image of the project."""
    return [(i, fn, _group_value(meta, key), sp) for i, fn, meta, sp in session.execute(
        select(Image.id, Image.file_name, Image.meta, Image.split).where(Image.project_id == project_id))]


def _ratios(ratios: dict[str, float] | None) -> dict[str, float]:
    ratios = dict(DEFAULT_RATIOS if ratios is None else ratios)
    if not ratios or any(not (v >= 0) for v in ratios.values()) or sum(ratios.values()) <= 0:
        raise InvalidInput("ratios: give non-negative shares with a positive sum, e.g. {\"train\": 0.8, \"val\": 0.2}")
    total = sum(ratios.values())
    return {k: v / total for k, v in sorted(ratios.items())}


def _assign_groups(groups: dict[str, list[int]], ratios: dict[str, float], rng: random.Random) -> dict[str, str]:
    """Group -> split: seeded shuffle (largest groups first, so they do not land last and overshoot),
    each to the split furthest below its target image count."""
    n = sum(len(v) for v in groups.values())
    order = sorted(groups)
    rng.shuffle(order)
    order.sort(key=lambda g: -len(groups[g]))  # stable: ties keep the seeded order
    have: Counter = Counter()
    out = {}
    for g in order:
        split = max(ratios, key=lambda s: (ratios[s] * n - have[s], ratios[s]))
        out[g] = split
        have[split] += len(groups[g])
    return out


def make_split(session: Session, project_id: int, mode: str, *, key: str | None = None,
               ratios: dict[str, float] | None = None, held_out: dict[str, list[str]] | None = None,
               seed: int = 0) -> dict:
    """Write a split on every image of the project (the caller commits). Returns the counts."""
    rng = random.Random(f"split|{seed}")
    if mode not in ("image", "group", "track"):
        raise InvalidInput(f"mode: {mode!r} is not image, group or track")
    if held_out is not None and mode != "track":
        raise InvalidInput("held_out: only for mode 'track'")
    key = key or ("track" if mode == "track" else "race_id")
    rows = _load(session, project_id, key)
    if not rows:
        raise InvalidInput(f"project {project_id} has no images to split")
    ungrouped = 0
    if mode == "image":
        r = _ratios(ratios)
        groups = {fn: [i] for i, fn, _, _ in rows}
        assign = _assign_groups(groups, r, rng)
    else:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, fn, g, _ in rows:
            if g is None:
                ungrouped += 1
                g = f"\x00image:{fn}"  # its own group; cannot collide with a real key value
            groups[g].append(i)
        if mode == "track" and held_out is not None:
            if ratios is not None:
                raise InvalidInput("held_out: give held_out or ratios for mode 'track', not both")
            assign = _held_out(groups, held_out, key)
        else:
            assign = _assign_groups(dict(groups), _ratios(ratios), rng)
    by_split: dict[str, list[int]] = defaultdict(list)
    for g, split in assign.items():
        by_split[split].extend(groups[g])
    for split, ids in by_split.items():
        ids.sort()
        for k in range(0, len(ids), _CHUNK):
            session.execute(update(Image).where(Image.id.in_(ids[k:k + _CHUNK])).values(split=split))
    n_groups = Counter(assign.values())
    return {"counts": {s: len(v) for s, v in sorted(by_split.items())},
            "groups": dict(sorted(n_groups.items())), "ungrouped": ungrouped}


def _held_out(groups: dict[str, list[int]], held_out: dict[str, list[str]], key: str) -> dict[str, str]:
    if "train" in held_out:
        raise InvalidInput("held_out.train: the groups not held out are train; name only the held-out splits")
    assign: dict[str, str] = {}
    for split, names in sorted(held_out.items()):
        for name in names:
            if name not in groups:
                known = ", ".join(sorted(g for g in groups if not g.startswith("\x00"))[:20])
                raise InvalidInput(f"held_out.{split}: no image has {key} = {name!r} (known: {known})")
            if name in assign and assign[name] != split:
                raise InvalidInput(f"held_out.{split}: {name!r} is also held out as {assign[name]!r}")
            assign[name] = split
    for g in groups:
        assign.setdefault(g, "train")
    return assign


def check(session: Session, project_id: int, key: str = "race_id") -> dict:
    """{ok, key, leaks: [{group, splits: {split: n_images}}]} for groups found in two or more splits."""
    per: dict[str, Counter] = defaultdict(Counter)
    for _, _, g, sp in _load(session, project_id, key):
        if g is not None and sp is not None:
            per[g][sp] += 1
    leaks = [{"group": g, "splits": dict(sorted(c.items()))} for g, c in sorted(per.items()) if len(c) > 1]
    return {"ok": not leaks, "key": key, "leaks": leaks}


def assert_no_leakage(session: Session, project_id: int, key: str = "race_id") -> None:
    """Raise SplitLeak naming the groups that straddle splits (training refuses a leaking split)."""
    res = check(session, project_id, key)
    if res["leaks"]:
        shown = "; ".join(f"{lk['group']} in {', '.join(f'{s} ({n})' for s, n in lk['splits'].items())}"
                          for lk in res["leaks"][:5])
        more = f" and {len(res['leaks']) - 5} more" if len(res["leaks"]) > 5 else ""
        raise SplitLeak(f"the split leaks: {len(res['leaks'])} {key} group(s) have images in more than one split: "
                        f"{shown}{more}. Re-split by {key} (POST /splits with mode 'group' or 'track').")
