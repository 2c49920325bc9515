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

import random
from collections import Counter, defaultdict

from sqlalchemy import String, and_, column, func, select, update, values
from sqlalchemy.orm import Session

from backend.errors import Conflict, InvalidInput
from backend.models import Image

DEFAULT_RATIOS = {"train": 0.8, "val": 0.1, "test": 0.1}
_CHUNK = 1000


class SplitLeak(Conflict):
    """A group (race, track, sequence) has images in more than one split."""


def _group_expr(key: str):
    """The image's group under `key` as SQL text (JSON ->> on PostgreSQL, json_extract on SQLite):
    grouping, counting and the leak check run in the database, never over every image in Python."""
    return Image.meta[key].as_string()


def _has_group(g):
    return and_(g.is_not(None), g != "")


def _group_sizes(session: Session, project_id: int, key: str) -> dict[str, int]:
    g = _group_expr(key)
    return {str(v): n for v, n in session.execute(
        select(g, func.count()).where(Image.project_id == project_id, _has_group(g)).group_by(g))}


def _ungrouped(session: Session, project_id: int, key: str) -> list[tuple[int, str]]:
    """(id, file_name) of the images without the key (each is a group of its own)."""
    g = _group_expr(key)
    return list(session.execute(select(Image.id, Image.file_name)
                                .where(Image.project_id == project_id, ~_has_group(g)).order_by(Image.id)))


def _ratios(ratios: dict[str, float] | None) -> dict[str, float]:
    ratios = dict(DEFAULT_RATIOS if ratios is None else ratios)
    if not ratios or any(not (v >= 0) for v in ratios.values()) or sum(ratios.values()) <= 0:
        raise InvalidInput("ratios: give non-negative shares with a positive sum, e.g. {\"train\": 0.8, \"val\": 0.2}")
    total = sum(ratios.values())
    return {k: v / total for k, v in sorted(ratios.items())}


def _assign_groups(groups: dict[str, int], ratios: dict[str, float], rng: random.Random) -> dict[str, str]:
    """Group (-> its image count) -> split: seeded shuffle (largest groups first, so they do not land
    last and overshoot), each to the split furthest below its target image count."""
    n = sum(groups.values())
    order = sorted(groups)
    rng.shuffle(order)
    order.sort(key=lambda g: -groups[g])  # stable: ties keep the seeded order
    have: Counter = Counter()
    out = {}
    for g in order:
        split = max(ratios, key=lambda s: (ratios[s] * n - have[s], ratios[s]))
        out[g] = split
        have[split] += groups[g]
    return out


def make_split(session: Session, project_id: int, mode: str, *, key: str | None = None,
               ratios: dict[str, float] | None = None, held_out: dict[str, list[str]] | None = None,
               seed: int = 0, dry_run: bool = False, check_key: str | None = None) -> dict:
    """Write a split on every image of the project (the caller commits); `dry_run` only previews.
    Returns the counts per split and, for `check_key` (default: the grouping key, or race_id), the
    groups the split would leave in two or more splits."""
    rng = random.Random(f"split|{seed}")
    if mode not in ("image", "group", "track"):
        raise InvalidInput(f"mode: {mode!r} is not image, group or track")
    if held_out is not None and mode != "track":
        raise InvalidInput("held_out: only for mode 'track'")
    key = key or ("track" if mode == "track" else "race_id")
    check_key = check_key or (key if mode != "image" else "race_id")
    if session.scalar(select(Image.id).where(Image.project_id == project_id).limit(1)) is None:
        raise InvalidInput(f"project {project_id} has no images to split")
    singles: list[tuple[int, str]] = []
    sizes: dict[str, int] = {}
    if mode == "image":
        r = _ratios(ratios)
        singles = list(session.execute(select(Image.id, Image.file_name).where(Image.project_id == project_id)))
        assign = _assign_groups({fn: 1 for _, fn in singles}, r, rng)
    else:
        sizes = _group_sizes(session, project_id, key)
        singles = _ungrouped(session, project_id, key)
        groups = {**sizes, **{f"\x00image:{fn}": 1 for _, fn in singles}}  # \x00: cannot collide with a value
        if mode == "track" and held_out is not None:
            if ratios is not None:
                raise InvalidInput("held_out: give held_out or ratios for mode 'track', not both")
            assign = _held_out(groups, held_out, key)
        else:
            assign = _assign_groups(groups, _ratios(ratios), rng)
    single_split = {i: assign[fn if mode == "image" else f"\x00image:{fn}"] for i, fn in singles}
    counts: Counter = Counter(single_split.values())
    for gv, n in sizes.items():
        counts[assign[gv]] += n
    out = {"counts": dict(sorted(counts.items())), "groups": dict(sorted(Counter(assign.values()).items())),
           "ungrouped": len(singles) if mode != "image" else 0}
    if dry_run:
        out["leaks"] = _proposed_leaks(session, project_id, check_key, key if mode != "image" else None,
                                       assign, single_split)
        out["check_key"] = check_key
        return out
    _write_groups(session, project_id, _group_expr(key), {gv: assign[gv] for gv in sizes})
    ids_by: dict[str, list[int]] = defaultdict(list)
    for i, sp in single_split.items():
        ids_by[sp].append(i)
    for split, ids in ids_by.items():
        ids.sort()
        for k in range(0, len(ids), _CHUNK):
            session.execute(update(Image).where(Image.id.in_(ids[k:k + _CHUNK])).values(split=split)
                            .execution_options(synchronize_session=False))
    return out


def _write_groups(session: Session, project_id: int, g, split_of: dict[str, str]) -> None:
    """Set each group's split. PostgreSQL: one UPDATE ... FROM (VALUES (group, split), ...) — a
    single hash-joined pass over the project (an IN list per split rescans it and was 7x slower);
    elsewhere one UPDATE per split and chunk of group values."""
    items = sorted(split_of.items())
    if session.get_bind().dialect.name == "postgresql":
        for k in range(0, len(items), 10 * _CHUNK):
            v = values(column("g", String), column("split", String), name="v").data(items[k:k + 10 * _CHUNK])
            session.execute(update(Image).where(Image.project_id == project_id, g == v.c.g,
                                                Image.split.is_distinct_from(v.c.split))
                            .values(split=v.c.split).execution_options(synchronize_session=False))
        return
    by_split: dict[str, list[str]] = defaultdict(list)
    for gv, sp in items:
        by_split[sp].append(gv)
    for split, vals in by_split.items():
        for k in range(0, len(vals), _CHUNK):
            session.execute(update(Image).where(Image.project_id == project_id, g.in_(vals[k:k + _CHUNK]))
                            .values(split=split).execution_options(synchronize_session=False))


def _proposed_leaks(session: Session, project_id: int, check_key: str, group_key: str | None,
                    assign: dict[str, str], single_split: dict[int, str]) -> list[dict]:
    """The leak check of a proposed split, before it is written: per (check group, assigned group)
    image counts come from SQL; the proposed split of each assigned group is known here."""
    cg = _group_expr(check_key)
    per: dict[str, Counter] = defaultdict(Counter)
    if group_key is not None:
        ag = _group_expr(group_key)
        for cv, av, n in session.execute(select(cg, ag, func.count()).where(
                Image.project_id == project_id, _has_group(cg), _has_group(ag)).group_by(cg, ag)):
            per[str(cv)][assign[str(av)]] += n
    if single_split:  # image mode, or images without the grouping key
        ids = set(single_split)
        q = select(Image.id, cg).where(Image.project_id == project_id, _has_group(cg))
        if group_key is not None:
            q = q.where(~_has_group(_group_expr(group_key)))
        for i, cv in session.execute(q):
            if i in ids:
                per[str(cv)][single_split[i]] += 1
    return [{"group": g, "splits": dict(sorted(c.items()))} for g, c in sorted(per.items()) if len(c) > 1]


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
    """{ok, key, leaks: [{group, splits: {split: n_images}}]} for groups found in two or more splits
    (one GROUP BY in the database: rows = groups x splits, not images)."""
    g = _group_expr(key)
    per: dict[str, Counter] = defaultdict(Counter)
    for gv, sp, n in session.execute(select(g, Image.split, func.count()).where(
            Image.project_id == project_id, _has_group(g), Image.split.is_not(None)).group_by(g, Image.split)):
        per[str(gv)][sp] += n
    leaks = [{"group": gv, "splits": dict(sorted(c.items()))} for gv, c in sorted(per.items()) if len(c) > 1]
    return {"ok": not leaks, "key": key, "leaks": leaks}


def assert_no_leakage(session: Session, project_id: int, key: str = "race_id") -> None:
    """Raise SplitLeak naming the groups that straddle splits (training refuses a leaking split)."""
    res = check(session, project_id, key)
    if res["leaks"]:
        shown = "; ".join(f"{lk['group']} in {', '.join(f'{s} ({n})' for s, n in lk['splits'].items())}"
                          for lk in res["leaks"][:5])
        more = f" and {len(res['leaks']) - 5} more" if len(res["leaks"]) > 5 else ""
        raise SplitLeak(f"the split leaks: {len(res['leaks'])} {key} group(s) have images in more than one split: "
                        f"{shown}{more}. Re-split by {key} on the project's Splits page (or POST /splits with mode 'group').")
