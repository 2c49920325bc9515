"""Train/val/test splits recorded on the images (QA pairs inherit them by join), without leakage.

Modes:
- image: images shuffled with the seed and cut by the ratios;
- group: whole groups of a meta key (default `race_id`: neighbouring frames of one race) are
  assigned, each to the split furthest below its target share of images; an image without the key
  is a group of its own;
- track: whole tracks (meta key `track` unless `key` says otherwise) held out by name
  (`held_out={"test": ["lighthouse"]}`, the rest is train), or, with ratios, split as groups.
Deterministic for a seed: groups of two or more images are ordered by their key before the seeded
shuffle, never by id; single images (image mode, images without the key, groups of one) are ranked
in SQL by md5(seed | key) and cut into the splits by rank, with the counts the greedy would give
them. Python only ever sees groups and counts, never one row per image; the writes are UPDATEs in
the database. `check` lists every group whose images sit in two or more splits (images without a
split are ignored); `assert_no_leakage` raises `SplitLeak` on one, so a training run can refuse it.
"""
from __future__ import annotations

import math
import random
from collections import Counter, defaultdict

from sqlalchemy import String, and_, case, cast, column, func, literal, or_, select, update, values
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


def _ratios(ratios: dict[str, float] | None) -> dict[str, float]:
    ratios = dict(DEFAULT_RATIOS if ratios is None else ratios)
    if not ratios or any(not (v >= 0) for v in ratios.values()) or sum(ratios.values()) <= 0:
        raise InvalidInput("ratios: give non-negative shares with a positive sum, e.g. {\"train\": 0.8, \"val\": 0.2}")
    total = sum(ratios.values())
    return {k: v / total for k, v in sorted(ratios.items())}


def _furthest_below(ratios: dict[str, float], n: int, have: Counter):
    return max(ratios, key=lambda s: (ratios[s] * n - have[s], ratios[s]))


def _assign_groups(groups: dict[str, int], ratios: dict[str, float], n: int, rng: random.Random,
                   have: Counter) -> dict[str, str]:
    """Group (-> its image count) -> split: seeded shuffle (largest groups first, so they do not land
    last and overshoot), each to the split furthest below its target share of the `n` images.
    `have` (images per split) is updated."""
    order = sorted(groups)
    rng.shuffle(order)
    order.sort(key=lambda g: -groups[g])  # stable: ties keep the seeded order
    out = {}
    for g in order:
        split = _furthest_below(ratios, n, have)
        out[g] = split
        have[split] += groups[g]
    return out


def _fill(ratios: dict[str, float], n: int, have: Counter, m: int) -> Counter:
    """How many of `m` single images each split gets: what the greedy of `_assign_groups` gives one
    image at a time, without m steps. The greedy takes the m largest of the deficits d, d - 1, d - 2 ...
    of every split: a bisection finds the level it stops at; every value two above that level is
    surely taken, the last few (at most a few per split) go one by one, so ties fall as in the greedy."""
    out: Counter = Counter()
    if m <= 0:
        return out
    d = {s: ratios[s] * n - have[s] for s in ratios}

    def taken(v: float) -> dict[str, int]:
        return {s: math.floor(x - v) + 1 if x >= v else 0 for s, x in d.items()}

    lo, hi = min(d.values()) - m - 1, max(d.values()) + 1  # sum(taken(lo)) > m >= sum(taken(hi)) = 0
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if sum(taken(mid).values()) <= m:
            hi = mid
        else:
            lo = mid
    out.update(taken(hi + 2))
    for _ in range(m - sum(out.values())):
        out[_furthest_below(ratios, n, have + out)] += 1
    return out


def _rank_split_of(units, counts: Counter):
    """SQL: the split of a single image by its rank in `units` (1-based): the ranks are cut, in
    split-name order, into runs of `counts` images."""
    whens, upto = [], 0
    names = [sp for sp in sorted(counts) if counts[sp] > 0]
    for sp in names[:-1]:
        upto += counts[sp]
        whens.append((units.c.rank <= upto, literal(sp)))
    return case(*whens, else_=literal(names[-1])) if whens else literal(names[-1])


def _ranked_units(project_id: int, seed: int, key: str | None, extra=()):
    """The single images (every image in image mode; else those without the key or alone in their
    group) with their seeded rank: row_number over md5(seed | unit key), the same on both databases
    (backend.db gives SQLite an md5). Columns: id, rank, then `extra`."""
    if key is None:
        ukey, cond = literal("i:") + Image.file_name, Image.project_id == project_id
    else:
        g = _group_expr(key)
        alone = select(g).where(Image.project_id == project_id, _has_group(g)).group_by(g).having(func.count() == 1)
        ukey = case((_has_group(g), literal("g:") + g), else_=literal("i:") + Image.file_name)
        cond = and_(Image.project_id == project_id, or_(~_has_group(g), g.in_(alone)))
    rank = func.row_number().over(order_by=(func.md5(literal(f"split|{seed}|") + ukey), ukey))
    return select(Image.id, rank.label("rank"), *extra).where(cond).subquery("units")


def _big_groups(session: Session, project_id: int, key: str) -> dict[str, int]:
    """Groups of two or more images (value -> image count); groups of one are single images."""
    g = _group_expr(key)
    return {str(v): n for v, n in session.execute(
        select(g, func.count()).where(Image.project_id == project_id, _has_group(g)).group_by(g)
        .having(func.count() > 1))}


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
    if mode == "track" and held_out is not None:
        if ratios is not None:
            raise InvalidInput("held_out: give held_out or ratios for mode 'track', not both")
        return _split_held_out(session, project_id, key, held_out, dry_run, check_key)
    r = _ratios(ratios)
    group_key = key if mode != "image" else None
    g = _group_expr(key)
    n, ungrouped = session.execute(select(func.count(), func.coalesce(func.sum(case((_has_group(g), 0), else_=1)), 0))
                                   .where(Image.project_id == project_id)).one()
    big = _big_groups(session, project_id, key) if group_key else {}
    have: Counter = Counter()
    assign = _assign_groups(big, r, n, rng, have)
    singles = _fill(r, n, have, n - sum(big.values()))
    counts = have + singles
    out = {"counts": dict(sorted(counts.items())),
           "groups": dict(sorted((Counter(assign.values()) + singles).items())),
           "ungrouped": ungrouped if group_key else 0}
    if dry_run:
        out["leaks"] = _proposed_leaks(session, project_id, seed, check_key, group_key, assign, singles)
        out["check_key"] = check_key
        return out
    if assign:
        _write_groups(session, project_id, g, assign)
    if singles:
        units = _ranked_units(project_id, seed, group_key)
        # in id order: the index entries of the new row versions go in sequence (25% faster than rank order)
        new = select(units.c.id, _rank_split_of(units, singles).label("split")).order_by(units.c.id).subquery("new")
        session.execute(update(Image).where(Image.id == new.c.id, Image.split.is_distinct_from(new.c.split))
                        .values(split=new.c.split).execution_options(synchronize_session=False))
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
            session.execute(update(Image).where(Image.project_id == project_id, g.in_(vals[k:k + _CHUNK]),
                                                Image.split.is_distinct_from(split))
                            .values(split=split).execution_options(synchronize_session=False))


def _leaks(per: dict[str, Counter]) -> list[dict]:
    return [{"group": g, "splits": dict(sorted(c.items()))} for g, c in sorted(per.items()) if len(c) > 1]


def _proposed_leaks(session: Session, project_id: int, seed: int, check_key: str, group_key: str | None,
                    assign: dict[str, str], singles: Counter) -> list[dict]:
    """The leak check of a proposed split, before it is written. Only check groups whose images
    come from two or more assignment units (a group of the split, or a single image) can leak: SQL
    finds those, and counts their images per (check group, group) and per (check group, proposed
    split of the single images); the split of each group is known here."""
    cg = _group_expr(check_key)
    if group_key is not None:
        ag = _group_expr(group_key)
        is_big = and_(_has_group(ag), ag.in_(select(ag).where(Image.project_id == project_id, _has_group(ag))
                                             .group_by(ag).having(func.count() > 1)))
        unit = case((is_big, literal("g:") + ag), else_=literal("i:") + cast(Image.id, String))
    else:
        is_big, unit = literal(False), Image.id
    mixed = (select(cg).where(Image.project_id == project_id, _has_group(cg)).group_by(cg)
             .having(func.count(func.distinct(unit)) > 1))
    per: dict[str, Counter] = defaultdict(Counter)
    if assign:
        for cv, av, n in session.execute(select(cg, ag, func.count()).where(
                Image.project_id == project_id, cg.in_(mixed), is_big).group_by(cg, ag)):
            per[str(cv)][assign[str(av)]] += n
    if singles:
        units = _ranked_units(project_id, seed, group_key, (cg.label("cg"),))
        sp = _rank_split_of(units, singles)
        for cv, s, n in session.execute(select(units.c.cg, sp, func.count()).where(units.c.cg.in_(mixed))
                                        .group_by(units.c.cg, sp)):
            per[str(cv)][s] += n
    return _leaks(per)


def _split_held_out(session: Session, project_id: int, key: str, held_out: dict[str, list[str]],
                    dry_run: bool, check_key: str) -> dict:
    """Track mode by name: the named groups to their split, every other image to train; one UPDATE
    with a CASE over the names, counts and leaks by GROUP BY."""
    if "train" in held_out:
        raise InvalidInput("held_out.train: the groups not held out are train; name only the held-out splits")
    g = _group_expr(key)
    names = sorted({nm for nms in held_out.values() for nm in nms})
    known = {str(v) for (v,) in session.execute(
        select(g).where(Image.project_id == project_id, g.in_(names)).distinct())}
    assign: dict[str, str] = {}
    for split, nms in sorted(held_out.items()):
        for name in nms:
            if name not in known:
                first = [str(v) for (v,) in session.execute(
                    select(g).where(Image.project_id == project_id, _has_group(g)).distinct().order_by(g).limit(20))]
                raise InvalidInput(f"held_out.{split}: no image has {key} = {name!r} (known: {', '.join(first)})")
            if name in assign and assign[name] != split:
                raise InvalidInput(f"held_out.{split}: {name!r} is also held out as {assign[name]!r}")
            assign[name] = split
    by_split: dict[str, list[str]] = defaultdict(list)
    for name, split in sorted(assign.items()):
        by_split[split].append(name)
    sp = case(*((g.in_(nms), literal(split)) for split, nms in sorted(by_split.items())), else_=literal("train"))
    where = Image.project_id == project_id
    counts = {s: n for s, n in session.execute(select(sp, func.count()).where(where).group_by(sp))}
    n_groups, ungrouped = session.execute(select(func.count(func.distinct(g)),
                                                 func.coalesce(func.sum(case((_has_group(g), 0), else_=1)), 0))
                                          .where(where)).one()
    groups = Counter(assign.values())
    groups["train"] = n_groups - len(assign) + ungrouped
    out = {"counts": dict(sorted(counts.items())), "groups": {s: c for s, c in sorted(groups.items()) if c},
           "ungrouped": ungrouped}
    if dry_run:
        cg = _group_expr(check_key)
        sub = (select(cg.label("cg"), sp.label("sp"), func.count().label("n")).where(where, _has_group(cg))
               .group_by(cg, sp).subquery())
        out["leaks"] = _leaks_of(session, sub)
        out["check_key"] = check_key
        return out
    session.execute(update(Image).where(where, Image.split.is_distinct_from(sp)).values(split=sp)
                    .execution_options(synchronize_session=False))
    return out


def _leaks_of(session: Session, sub) -> list[dict]:
    """Rows (cg, sp, n) of a per (group, split) count -> the groups in two or more splits, filtered
    in SQL (a check key with a value per image returns nothing, not every image)."""
    leaking = select(sub.c.cg).group_by(sub.c.cg).having(func.count() > 1)
    per: dict[str, Counter] = defaultdict(Counter)
    for gv, sp, n in session.execute(select(sub.c.cg, sub.c.sp, sub.c.n).where(sub.c.cg.in_(leaking))):
        per[str(gv)][sp] += n
    return _leaks(per)


def check(session: Session, project_id: int, key: str = "race_id") -> dict:
    """{ok, key, leaks: [{group, splits: {split: n_images}}]} for groups found in two or more splits
    (GROUP BY in the database; only the leaking groups' rows come back)."""
    g = _group_expr(key)
    sub = (select(g.label("cg"), Image.split.label("sp"), func.count().label("n"))
           .where(Image.project_id == project_id, _has_group(g), Image.split.is_not(None)).group_by(g, Image.split)
           .subquery())
    leaks = _leaks_of(session, sub)
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
