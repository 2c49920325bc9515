"""The shipped demo base (backend/demo_data/model): its card matches the weights file, it is small
and bf16, it was pre-trained on tracks the demo never uses, and it loads and answers with boxes.
The seeded pre-training script that made it runs from scratch on a small folder of frames."""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
import torch

from backend.catalog import DEMO_SHIPPED, shipped_demo_card
from backend.demo import DEMO_DATA, DEMO_TRACKS, HELD_OUT_TRACKS
from worker.demo_model import Recipe, build_pretrained, file_sha256, finetune_line

torch.set_num_threads(1)


def _dtypes(path: Path) -> set[str]:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return {v["dtype"] for k, v in header.items() if k != "__metadata__"}


def test_shipped_card_matches_the_weights_file():
    card = shipped_demo_card()
    weights = DEMO_SHIPPED / card["weights"]
    assert file_sha256(weights) == card["sha256"]
    assert weights.stat().st_size == card["bytes"] <= 15_000_000
    assert _dtypes(weights) == {"BF16"}
    # what it was trained on, and what it never saw
    assert not set(card["tracks"]) & set(DEMO_TRACKS) and set(card["never_seen"]) == set(DEMO_TRACKS)
    assert sum(card["tracks"].values()) >= 1000 and "REAL" in card["data"]
    assert card["cpu_seconds"] > 0 and card["recipe"]["steps"] == Recipe.from_overrides(card["recipe"]).steps
    readme = (DEMO_SHIPPED / "README.md").read_text()
    assert card["sha256"] in readme and all(t in readme for t in card["tracks"])
    assert finetune_line(card["recipe"]) in readme  # how to fine-tune it: its order and loss


def test_shipped_recipe_is_the_default_recipe():
    """`studio models build demo` re-trains exactly what shipped (Recipe's defaults)."""
    card = shipped_demo_card()
    assert Recipe.from_overrides(card["recipe"]) == Recipe()


def test_shipped_model_loads_and_detects_on_a_held_out_frame():
    from PIL import Image

    from worker.families import get_family
    from worker.inference import predict
    from worker.types import Sample

    family = get_family("paligemma")
    model, proc = family.load(str(DEMO_SHIPPED), dtype=torch.float32)
    frame = sorted((DEMO_DATA / HELD_OUT_TRACKS[0]).glob("*_im.jpg"))[0]
    (pred,) = predict(model, proc, family, [Sample(image=Image.open(frame).convert("RGB"), classes=["kart"])],
                      max_new_tokens=20)
    assert pred.boxes and all(b.label == "kart" for b in pred.boxes), pred.text


def test_pretraining_script_runs_from_scratch_and_writes_its_card(tmp_path):
    frames = tmp_path / "frames"
    shutil.copytree(DEMO_DATA / "lighthouse", frames / "other_track")  # a track name the demo does not use
    shutil.copytree(DEMO_DATA / "sandtrack", frames / "sandtrack")  # a demo track: must be left out
    r = Recipe(image_size=64, hidden=32, vision_layers=1, text_layers=1, vocab=700, steps=3, batch_size=4,
               paste=0.5, repeat_tracks=("other_track",), repeat=2)  # the copy-paste and repeat paths too
    lines: list[str] = []
    out = build_pretrained(tmp_path / "model", r, frames, log=lines.append)
    card = json.loads((out / "studio_pretraining.json").read_text())
    assert card["tracks"] == {"other_track": 40} and card["sha256"] == file_sha256(out / "model.safetensors")
    assert card["data"].endswith("(game engine labels), other_track drawn 2x as often")
    assert card["recipe"]["steps"] == 3 and len(card["loss_curve"]) == 1 and card["cpu_seconds"] > 0
    assert _dtypes(out / "model.safetensors") == {"BF16"}
    assert any("CPU" in ln for ln in lines) and not (tmp_path / "model.tmp").exists()
    with pytest.raises(FileNotFoundError, match="no SuperTuxKart track folders"):
        build_pretrained(tmp_path / "m2", r, tmp_path / "frames" / "other_track")


def test_repeated_tracks_weigh_more_in_pretraining_but_count_once(tmp_path):
    from worker.demo_model import pretraining_samples

    for src, name in (("lighthouse", "track_a"), ("zengarden", "track_b")):
        shutil.copytree(DEMO_DATA / src, tmp_path / name)
    plain, counts = pretraining_samples(tmp_path, Recipe(families=("detection",)), log=lambda m: None)
    lines: list[str] = []
    rep, counts_rep = pretraining_samples(tmp_path, Recipe(families=("detection",), repeat_tracks=("track_b",),
                                                           repeat=3), log=lines.append)
    assert counts == counts_rep == {"track_a": 40, "track_b": 40}  # the card counts frames, not draws
    n_b = sum(s.image_id >= 40 for s in plain)  # track_b's ids follow track_a's 40 (frames without karts drop out)
    assert n_b == 40 and len(rep) == len(plain) + 2 * n_b
    assert sum(s.image_id >= 40 for s in rep) == 3 * n_b and "track_b repeated 3x" in lines[0]
