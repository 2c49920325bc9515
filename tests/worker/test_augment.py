"""worker/augment.py: the training-time views keep boxes on their objects and answers true."""
from __future__ import annotations

import random

from worker.augment import augment, colour_jitter
from worker.types import Box, Sample


def _frame(w=100, h=50):
    from PIL import Image

    im = Image.new("RGB", (w, h))
    im.putpixel((10, 10), (255, 0, 0))
    return im


def test_augment_crops_move_the_boxes_with_the_image_and_mirrors_keep_them_on_the_kart():
    s = Sample(image=_frame(), boxes=[Box("kart", 5, 5, 15, 15), Box("kart", 80, 30, 90, 40)])
    rng = random.Random(0)
    for _ in range(200):
        a = augment(s, "crop_flip", rng, crop=0.5)
        w, h = a.image.size
        assert 50 <= w <= 100 and 25 <= h <= 50 and a.boxes
        assert all(0 <= b.x1 < b.x2 <= w and 0 <= b.y1 < b.y2 <= h for b in a.boxes)
        # the red pixel (10, 10) of the first kart is still inside its box wherever the crop and mirror put it
        red = [(x, y) for x in range(w) for y in range(h) if a.image.getpixel((x, y)) == (255, 0, 0)]
        if red and len(a.boxes) == 2:  # both karts kept (a kart cut to under half its area is dropped)
            (x, y), = red
            assert any(b.x1 <= x + 0.5 <= b.x2 and b.y1 <= y + 0.5 <= b.y2 for b in a.boxes)


def test_augment_none_and_flip_modes():
    s = Sample(image=_frame(), boxes=[Box("kart", 5, 5, 15, 15)])
    rng = random.Random(2)
    assert all(augment(s, "none", rng) is s for _ in range(20))
    flips = [augment(s, "flip", rng) for _ in range(40)]
    assert all(f.image.size == (100, 50) for f in flips)  # never cropped
    assert {tuple((b.x1, b.x2) for b in f.boxes) for f in flips} == {((5, 15),), ((85, 95),)}


def test_augment_never_mirrors_left_right_questions_and_keeps_count_answers():
    rng = random.Random(1)
    lr = Sample(image=_frame(), task="vqa", question="Is A left or right of B?", answer="left", qtype="ego_left_right")
    cnt = Sample(image=_frame(), task="vqa", question="How many karts?", answer="2", qtype="count_total")
    assert all(augment(lr, "crop_flip", rng, crop=0.5) is lr for _ in range(50))
    outs = [augment(cnt, "crop_flip", rng, crop=0.5) for _ in range(50)]
    assert all(o.answer == "2" and o.image.size == (100, 50) for o in outs)  # questions are never cropped
    assert any(o is not cnt for o in outs) and any(o is cnt for o in outs)


def test_training_views_are_fixed_by_seed_epoch_and_index():
    """A resumed or distributed run sees the same view of a sample at the same position."""
    from worker.train_config import TrainConfig
    from worker.training import _StreamDataset

    samples = [Sample(image=_frame(), boxes=[Box("kart", 5, 5, 15, 15), Box("kart", 60, 20, 90, 45)])]
    ds = _StreamDataset(samples, TrainConfig(family="paligemma", base_model="x", output_dir="o", augment="crop_flip",
                                               object_order="as_given"))
    view = lambda e: ds[(e, 0, 0)][2]  # noqa: E731
    a, b = view(3), view(3)
    assert a.image.tobytes() == b.image.tobytes() and a.boxes == b.boxes
    assert len({(v.image.size, tuple(v.boxes)) for v in map(view, range(12))}) > 6  # epochs differ
    plain = _StreamDataset(samples, TrainConfig(family="paligemma", base_model="x", output_dir="o", object_order="as_given"))
    assert plain[(3, 0, 0)][2] is samples[0]  # augment "none" (the default) leaves samples alone


def test_colour_jitter_changes_colours_not_boxes_and_leaves_named_questions_alone():
    from PIL import Image

    im = Image.new("RGB", (40, 20), (200, 40, 40))
    det = Sample(image=im, boxes=[Box("kart", 5, 5, 15, 15)])
    rng = random.Random(0)
    views = [colour_jitter(det, rng, 1.0) for _ in range(30)]
    assert all(v.boxes == det.boxes and v.image.size == (40, 20) for v in views)
    colours = {v.image.getpixel((0, 0)) for v in views}
    assert len(colours) > 20  # hue, saturation, brightness moved
    assert any(len(set(v.image.getpixel((0, 0)))) == 1 for v in views)  # some grey
    assert im.getpixel((0, 0)) == (200, 40, 40)  # the input is not changed

    def moved(strength):
        return sum(abs(a - b) for k in range(30)
                   for a, b in zip(colour_jitter(det, random.Random(k), strength).image.getpixel((0, 0)), (200, 40, 40)))

    assert moved(0.1) < moved(0.5) / 3 < moved(1.0) / 3  # strength scales it
    state = rng.getstate()
    assert colour_jitter(det, rng, 0.0) is det and rng.getstate() == state  # off draws nothing: old recipes rebuild the same
    named = Sample(image=im, task="vqa", question="Is Tux left of the ego kart?", answer="left", qtype="ego_left_right")
    count = Sample(image=im, task="vqa", question="How many karts?", answer="1", qtype="count_total")
    assert colour_jitter(named, rng, 1.0) is named  # a kart's name may rest on its colour
    assert colour_jitter(count, rng, 1.0).answer == "1" and colour_jitter(count, rng, 1.0) is not count
