"""worker/copy_paste.py: a pasted crop lands inside the box added for it; covered boxes go."""
from __future__ import annotations

import random

from PIL import Image

from worker.copy_paste import CropBank, covered, paste
from worker.types import Box, Sample

RED, GREEN = (255, 0, 0), (0, 255, 0)


def _bank() -> CropBank:
    """One 30x20 red kart on a grey frame, plus a 10 px one too small to enlarge."""
    im = Image.new("RGB", (200, 100), (128, 128, 128))
    im.paste(RED, (40, 40, 70, 60))
    im.paste(RED, (100, 10, 110, 20))
    s = Sample(image=im, boxes=[Box("kart", 40, 40, 70, 60), Box("kart", 100, 10, 110, 20)])
    return CropBank.from_samples([s, Sample(image=im, task="vqa", question="q", answer="a")], min_side=24)


def test_bank_keeps_only_boxes_big_enough_to_enlarge():
    bank = _bank()
    assert len(bank) == 1 and bank.crops[0].size == (30, 20) and bank.labels == ["kart"]


def test_pasted_crop_is_inside_its_new_box_and_every_box_stays_in_the_frame():
    bank, rng = _bank(), random.Random(0)
    base = Image.new("RGB", (300, 200), GREEN)
    s = Sample(image=base, boxes=[Box("kart", 10, 10, 20, 20)])
    sizes = []
    for _ in range(100):
        p = paste(s, bank, rng, n=1)
        assert s.image.getpixel((0, 0)) == GREEN and s.boxes == [Box("kart", 10, 10, 20, 20)]  # input untouched
        w, h = p.image.size
        assert (w, h) == (300, 200) and all(0 <= b.x1 < b.x2 <= w and 0 <= b.y1 < b.y2 <= h for b in p.boxes)
        new = p.boxes[-1]
        red = [(x, y) for x in range(0, w, 2) for y in range(0, h, 2) if p.image.getpixel((x, y)) == RED]
        assert red and all(new.x1 <= x <= new.x2 and new.y1 <= y <= new.y2 for x, y in red)
        sizes.append(max(new.x2 - new.x1, new.y2 - new.y1))
        # the old box survives exactly when the paste covers at most half of it
        assert (Box("kart", 10, 10, 20, 20) in p.boxes) == (covered(Box("kart", 10, 10, 20, 20), new) <= 0.5)
    # sizes spread over the range, never past 3x the 30 px crop (a blur no frame shows)
    assert min(sizes) < 40 and max(sizes) > 80 and max(sizes) <= 90


def test_paste_leaves_questions_and_an_empty_bank_alone():
    q = Sample(image=Image.new("RGB", (50, 50)), task="vqa", question="How many karts?", answer="1")
    assert paste(q, _bank(), random.Random(0)) is q
    d = Sample(image=Image.new("RGB", (50, 50)), boxes=[])
    assert paste(d, CropBank(), random.Random(0)) is d


def test_covered_share():
    assert covered(Box("k", 0, 0, 10, 10), Box("k", 5, 0, 20, 10)) == 0.5
    assert covered(Box("k", 0, 0, 10, 10), Box("k", 20, 20, 30, 30)) == 0.0
