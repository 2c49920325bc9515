"""Splits by image, group and track: deterministic, no group in two splits, the leakage check."""
from __future__ import annotations

from collections import defaultdict

import pytest

TRACKS = ["lighthouse", "hacienda", "sandtrack", "zengarden", "snowtuxpeak", "cornfield_crossing"]


def frames() -> list[tuple[str, dict]]:
    """6 tracks x 3 races x 12 frames, like the shared SuperTuxKart set."""
    return [(f"{t}/{r}_{f:03d}.jpg", {"track": t, "race_id": f"{t}:seed{r}"})
            for t in TRACKS for r in range(3) for f in range(12)]


def splits_of(app, pid) -> dict[str, tuple[str | None, dict]]:
    from sqlalchemy import select

    from backend.models import Image

    with app.state.sessionmaker() as s:
        return {fn: (sp, m) for fn, sp, m in s.execute(
            select(Image.file_name, Image.split, Image.meta).where(Image.project_id == pid))}


def groups_per_split(app, pid, key) -> dict[str, set]:
    out = defaultdict(set)
    for sp, m in splits_of(app, pid).values():
        out[m[key]].add(sp)
    return out


@pytest.fixture
def pid(client, seed_images):
    from tests.formats.helpers import new_project

    p = new_project(client, "splits")
    seed_images(p, frames())
    return p


def post(client, pid, **body):
    return client.post(f"/api/projects/{pid}/splits", json=body)


def test_image_mode_ratios_and_determinism(client, app, pid):
    r = post(client, pid, mode="image", ratios={"train": 0.8, "val": 0.1, "test": 0.1}, seed=3)
    assert r.status_code == 200, r.text
    c = r.json()["counts"]
    assert sum(c.values()) == 216 and abs(c["train"] - 172.8) <= 1 and abs(c["val"] - 21.6) <= 1
    first = splits_of(app, pid)
    post(client, pid, mode="image", seed=3)  # default ratios are 0.8 / 0.1 / 0.1
    assert splits_of(app, pid) == first
    post(client, pid, mode="image", seed=4)
    assert splits_of(app, pid) != first
    # split by image, the races leak (neighbouring frames in train and test): the check says so
    chk = client.get(f"/api/projects/{pid}/splits/check", params={"key": "race_id"}).json()
    assert chk["ok"] is False and chk["leaks"] and all(len(lk["splits"]) > 1 for lk in chk["leaks"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_mode_never_straddles(client, app, pid, seed):
    r = post(client, pid, mode="group", key="race_id", ratios={"train": 0.7, "val": 0.15, "test": 0.15}, seed=seed)
    assert r.status_code == 200, r.text
    body = r.json()
    assert sum(body["counts"].values()) == 216 and sum(body["groups"].values()) == 18 and body["ungrouped"] == 0
    assert set(body["counts"]) == {"train", "val", "test"}
    assert all(len(s) == 1 for s in groups_per_split(app, pid, "race_id").values())
    assert client.get(f"/api/projects/{pid}/splits/check", params={"key": "race_id"}).json() == {
        "ok": True, "key": "race_id", "leaks": []}
    first = splits_of(app, pid)
    post(client, pid, mode="group", key="race_id", ratios={"train": 0.7, "val": 0.15, "test": 0.15}, seed=seed)
    assert splits_of(app, pid) == first


def test_track_mode_held_out_and_ratios(client, app, pid):
    r = post(client, pid, mode="track", held_out={"test": ["lighthouse"], "val": ["hacienda", "sandtrack"]})
    assert r.status_code == 200, r.text
    assert r.json()["counts"] == {"test": 36, "train": 108, "val": 72}
    for fn, (sp, m) in splits_of(app, pid).items():
        assert sp == {"lighthouse": "test", "hacienda": "val", "sandtrack": "val"}.get(m["track"], "train")
    assert client.get(f"/api/projects/{pid}/splits/check", params={"key": "track"}).json()["ok"] is True
    assert client.get(f"/api/projects/{pid}/splits/check").json()["ok"] is True  # races sit inside tracks
    r = post(client, pid, mode="track", ratios={"train": 4, "test": 2}, seed=5)  # whole tracks by share
    assert r.status_code == 200 and r.json()["counts"] == {"test": 72, "train": 144}
    assert all(len(s) == 1 for s in groups_per_split(app, pid, "track").values())


def test_leak_is_reported_and_refused(client, app, pid):
    from sqlalchemy import update

    from backend.db import session_scope
    from backend.errors import Conflict
    from backend.models import Image
    from backend.splits import SplitLeak, assert_no_leakage

    post(client, pid, mode="group", seed=0)
    with session_scope(app.state.sessionmaker) as s:
        assert_no_leakage(s, pid, "race_id")  # clean
        split = s.scalar(Image.__table__.select().with_only_columns(Image.split)
                         .where(Image.file_name == "lighthouse/0_000.jpg"))
        other = "test" if split != "test" else "train"
        s.execute(update(Image).where(Image.file_name == "lighthouse/0_001.jpg").values(split=other))
    chk = client.get(f"/api/projects/{pid}/splits/check").json()
    assert chk["ok"] is False
    assert chk["leaks"] == [{"group": "lighthouse:seed0", "splits": dict(sorted({split: 11, other: 1}.items()))}]
    with app.state.sessionmaker() as s, pytest.raises(SplitLeak) as e:
        assert_no_leakage(s, pid, "race_id")
    assert isinstance(e.value, Conflict) and "lighthouse:seed0" in e.value.message


@pytest.mark.parametrize("body,needle", [
    ({"mode": "shuffle"}, "mode"),
    ({"mode": "track", "held_out": {"test": ["atlantis"]}}, "atlantis"),
    ({"mode": "track", "held_out": {"train": ["lighthouse"]}}, "held_out.train"),
    ({"mode": "track", "held_out": {"test": ["lighthouse"], "val": ["lighthouse"]}}, "lighthouse"),
    ({"mode": "image", "ratios": {"train": -1}}, "ratios"),
    ({"mode": "image", "ratios": {"train": 0}}, "ratios"),
    ({"mode": "group", "held_out": {"test": ["lighthouse"]}}, "held_out"),
    ({"mode": "image", "colour": 1}, "colour"),
])
def test_bad_split_input(client, app, pid, body, needle):
    before = splits_of(app, pid)
    r = post(client, pid, **body)
    assert r.status_code == 422 and needle in r.text, r.text
    assert splits_of(app, pid) == before


def test_images_without_the_key_are_their_own_groups(client, app, seed_images):
    from tests.formats.helpers import new_project

    p = new_project(client, "mixed")
    seed_images(p, [(f"a{i}.png", {"race_id": "r1"}) for i in range(5)] + [(f"b{i}.png", {}) for i in range(5)])
    r = post(client, p, mode="group", ratios={"train": 0.5, "test": 0.5})
    assert r.status_code == 200 and r.json()["ungrouped"] == 5 and sum(r.json()["groups"].values()) == 6
    assert len({sp for fn, (sp, _) in splits_of(app, p).items() if fn.startswith("a")}) == 1


def test_single_images_are_ranked_by_seeded_md5(client, app, seed_images):
    """Single images are cut into the splits by their rank under md5(seed | key), in split-name
    order: the same split on SQLite and PostgreSQL (computed here independently, in Python)."""
    import hashlib

    from tests.formats.helpers import new_project

    p = new_project(client, "ranked")
    names = [f"img{i:02d}.png" for i in range(20)]
    seed_images(p, [(fn, {}) for fn in names])
    r = post(client, p, mode="image", ratios={"train": 0.5, "test": 0.5}, seed=7)
    assert r.status_code == 200 and r.json()["counts"] == {"test": 10, "train": 10}
    ranked = sorted(names, key=lambda fn: (hashlib.md5(f"split|7|i:{fn}".encode()).hexdigest(), f"i:{fn}"))
    assert {fn: sp for fn, (sp, _) in splits_of(app, p).items()} == {
        fn: "test" if k < 10 else "train" for k, fn in enumerate(ranked)}


def test_groups_of_one_and_the_preview_agree_with_the_split(client, app, seed_images):
    """Groups of two or more, groups of one and images without the key together: no group straddles,
    and the preview's counts and leaks (checked by another key) are what applying the split gives."""
    from tests.formats.helpers import new_project

    p = new_project(client, "ones")
    rows = [(f"r{r}_{f}.png", {"race_id": f"r{r}", "track": f"t{r % 4}"}) for r in range(12) for f in range(r % 3 + 1)]
    rows += [(f"solo{i}.png", {"track": f"t{i % 4}"}) for i in range(9)]
    seed_images(p, rows)
    body = dict(mode="group", key="race_id", ratios={"train": 0.6, "val": 0.2, "test": 0.2}, seed=2, check_key="track")
    preview = post(client, p, dry_run=True, **body).json()
    applied = post(client, p, **body).json()
    assert preview["counts"] == applied["counts"] and sum(applied["counts"].values()) == len(rows)
    assert applied["ungrouped"] == 9 and sum(applied["groups"].values()) == 12 + 9
    per_race = defaultdict(set)
    for sp, m in splits_of(app, p).values():
        if "race_id" in m:
            per_race[m["race_id"]].add(sp)
    assert len(per_race) == 12 and all(len(s) == 1 for s in per_race.values())
    chk = client.get(f"/api/projects/{p}/splits/check", params={"key": "track"}).json()
    assert preview["leaks"] == chk["leaks"] and chk["leaks"]  # tracks hold several races: they leak
    image_preview = post(client, p, mode="image", seed=4, dry_run=True).json()
    post(client, p, mode="image", seed=4)
    assert image_preview["leaks"] == client.get(f"/api/projects/{p}/splits/check").json()["leaks"]


def test_fill_is_the_greedy_one_image_at_a_time():
    from collections import Counter

    from backend.splits import _fill, _furthest_below, _ratios

    rnd = __import__("random").Random(0)
    for _ in range(300):
        names = rnd.sample(["train", "val", "test"], rnd.randint(1, 3))
        raw = {s: rnd.choice([0, 0.1, 0.2, 0.25, 1, 3]) for s in names}
        if not sum(raw.values()):
            continue
        ratios = _ratios(raw)
        n = rnd.randint(1, 400)
        have = Counter({s: rnd.randint(0, n // 3) for s in ratios})
        m = rnd.randint(0, 200)
        want, h = Counter(), Counter(have)
        for _ in range(m):
            s = _furthest_below(ratios, n, h)
            h[s] += 1
            want[s] += 1
        assert +_fill(ratios, n, Counter(have), m) == +want, (ratios, n, have, m)
