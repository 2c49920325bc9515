"""The split page's preview (dry_run: counts + the leak check of the proposal, nothing written) and
the grid's meta filter (track, race)."""
from __future__ import annotations

from tests.qa.test_splits import frames, pid, post, splits_of  # noqa: F401 (pid: the fixture)


def test_preview_counts_and_leaks_without_writing(client, app, pid):
    before = splits_of(app, pid)
    r = post(client, pid, mode="group", key="race_id", ratios={"train": 2, "test": 1}, seed=3, dry_run=True)
    assert r.status_code == 200, r.text
    body = r.json()
    assert sum(body["counts"].values()) == 216 and body["leaks"] == [] and body["check_key"] == "race_id"
    assert splits_of(app, pid) == before  # a preview writes nothing
    # by image, frames of one race land in several splits: the preview lists the races
    r = post(client, pid, mode="image", ratios={"train": 0.5, "test": 0.5}, dry_run=True)
    leaks = r.json()["leaks"]
    assert len(leaks) == 18 and all(sum(lk["splits"].values()) == 12 for lk in leaks)
    # by track, checked by race: no leak (a race is inside one track); checked by track the same
    r = post(client, pid, mode="track", held_out={"test": ["lighthouse"]}, check_key="race_id", dry_run=True)
    assert r.json()["leaks"] == [] and r.json()["counts"] == {"test": 36, "train": 180}
    # applying the previewed group split gives the previewed counts, and the check agrees
    r = post(client, pid, mode="group", key="race_id", ratios={"train": 2, "test": 1}, seed=3)
    assert r.json()["counts"] == body["counts"] and "leaks" not in r.json() or r.json()["leaks"] is None
    assert client.get(f"/api/projects/{pid}/splits/check", params={"key": "race_id"}).json()["ok"] is True


def test_grid_filters_by_meta(client, pid):
    r = client.get(f"/api/projects/{pid}/images", params={"meta_key": "race_id", "meta_value": "lighthouse:seed1"})
    assert r.status_code == 200 and r.json()["total"] == 12
    assert {i["file_name"] for i in r.json()["items"]} == {fn for fn, m in frames() if m["race_id"] == "lighthouse:seed1"}
    r = client.get(f"/api/projects/{pid}/images", params={"meta_key": "track", "meta_value": "hacienda", "limit": 1})
    assert r.json()["total"] == 36
    r = client.get(f"/api/projects/{pid}/images", params={"meta_key": "track"})
    assert r.status_code == 422 and "meta_value" in r.json()["detail"]
