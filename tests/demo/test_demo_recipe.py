"""The demo base's recipe (worker/demo_recipe.py): a bad override is one clear error naming the
field, at start-up, never a traceback an hour into a build."""
from __future__ import annotations

import dataclasses

import pytest

from worker.demo_recipe import Recipe


def test_overrides_apply_and_json_lists_become_tuples():
    r = Recipe.from_overrides({"steps": 6, "balance": ["ego_where"], "repeat_tracks": ["hacienda"], "repeat": 4})
    assert (r.steps, r.balance, r.repeat_tracks, r.repeat) == (6, ("ego_where",), ("hacienda",), 4)
    assert r == Recipe(**{k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(r).items()})
    assert Recipe.from_overrides(None) == Recipe.from_overrides({}) == Recipe()


@pytest.mark.parametrize("overrides, says", [
    ({"stepz": 6}, "unknown keys ['stepz']"),
    ({"repeat": 0}, "repeat=0 (at least 1)"),  # 0 would silently drop the listed tracks
    ({"steps": 0, "crop": 1.5}, "steps=0 (at least 1), crop=1.5 (0 to 1)"),
    ({"paste": -0.1}, "paste=-0.1 (0 to 1)"),
    ({"colour": 2}, "colour=2 (0 to 1)"),
    ({"lr": 0, "loc_sigma": -1}, "lr=0 (above 0), loc_sigma=-1 (above 0)"),
    ({"seed": -1}, "seed=-1 (at least 0)"),
    ({"hidden": "128"}, "hidden must be an integer, got '128'"),
    ({"hidden": True}, "hidden must be an integer"),
    ({"steps": 6.5}, "steps must be an integer"),
    ({"lr": "fast"}, "lr must be a number"),
    ({"balance": "ego_where"}, "balance must be a list of names"),
    ({"repeat_tracks": [1]}, "repeat_tracks must be a list of names"),
    ({"families": ["detection", "colour"]}, "families: unknown family 'colour' (known: "),
    ({"families": []}, "families: give at least one family"),
    ({"image_size": 100}, "image_size 100 is not a multiple of patch 16"),
    ({"hidden": 130}, "hidden 130 is not a multiple of 4"),
])
def test_a_bad_override_names_the_field(overrides, says):
    with pytest.raises(ValueError) as e:
        Recipe.from_overrides(overrides)
    assert says in str(e.value)


def test_not_an_object_is_refused():
    with pytest.raises(ValueError, match="expected a JSON object"):
        Recipe.from_overrides([("steps", 6)])


def test_a_bad_STUDIO_DEMO_RECIPE_stops_the_cli_before_any_command(monkeypatch, tmp_path):
    from backend.config import get_settings
    from tests.conftest import cli_runner

    monkeypatch.setenv("STUDIO_DEMO_RECIPE", '{"repeat": 0}')
    try:
        res = cli_runner(monkeypatch, tmp_path / "data", f"sqlite:///{tmp_path / 's.db'}")("models", "list")
        assert res.exit_code == 2, res.output
        assert "invalid setting STUDIO_DEMO_RECIPE: demo recipe: out of range: repeat=0 (at least 1)" in res.output
        assert "Traceback" not in res.output
        monkeypatch.setenv("STUDIO_DEMO_RECIPE", '{"steps": 6}')
        get_settings.cache_clear()
        assert get_settings().demo_recipe == {"steps": 6}
    finally:
        get_settings.cache_clear()
