"""Batched scored inference on tiny models that first memorise three images (so they emit boxes)."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from PIL import Image

from worker.families import REGISTRY, get_family
from worker.inference import predict, span_score, token_char_ends
from worker.types import BadImage, Box, Sample

CLASSES = ["kart", "person"]


def data():
    ims = [Image.new("RGB", (96, 64), (200, 30, 30)), Image.new("RGB", (80, 80), (30, 30, 200)),
           Image.new("RGB", (64, 96), (30, 200, 30))]
    return [
        Sample(ims[0], classes=CLASSES, boxes=[Box("kart", 4, 5, 60, 50), Box("person", 50, 10, 90, 60)], image_id=0),
        Sample(ims[1], classes=CLASSES, boxes=[Box("person", 10, 10, 30, 70)], image_id=1),
        Sample(ims[2], classes=CLASSES, boxes=[Box("kart", 0, 0, 64, 40), Box("kart", 10, 50, 60, 90)], image_id=2),
        Sample(ims[1], task="vqa", question="how many karts are there?", answer="2", image_id=3),
    ]


@pytest.fixture(scope="module")
def trained(tiny_models):
    """Each family's tiny model after a short memorisation run on data() (a plain AdamW loop here;
    the real training loop is worker/training.py's business)."""
    cache = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            fam = get_family(name)
            model, proc = fam.load(str(tiny_models[name]))
            batch = fam.build_batch(proc, data(), train=True)
            opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
            model.train()
            for _ in range(80):
                model(**batch).loss.backward()
                opt.step()
                opt.zero_grad()
            model.eval()
            cache[name] = fam, model, proc
        return cache[name]
    return get


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_scored_boxes_and_batched_equals_single(name, trained):
    fam, model, proc = trained(name)
    calls = []
    preds = predict(model, proc, fam, data(), batch_size=4, max_new_tokens=60,
                    progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (4, 4)
    assert [p.image_id for p in preds] == [0, 1, 2, 3]
    boxes = [b for p in preds for b in p.boxes]
    assert len(boxes) >= 3, [p.text for p in preds]
    assert all(0 < b.score <= 1 for b in boxes)
    assert len({b.score for b in boxes}) > 1, "scores must come from token probabilities, not a constant"
    # the memorised first box of image 0 comes back within a few pixels
    first = preds[0].boxes[0]
    assert first.label == "kart" and first.known and abs(first.x1 - 4) < 4 and abs(first.y2 - 50) < 4
    assert preds[3].task == "vqa" and preds[3].boxes == [] and preds[3].answer == preds[3].text.strip()
    one_by_one = [predict(model, proc, fam, [s], batch_size=1, max_new_tokens=60)[0] for s in data()]
    assert [p.text for p in preds] == [p.text for p in one_by_one]  # left padding changes nothing
    for a, b in zip(preds, one_by_one):
        assert [x.score for x in a.boxes] == pytest.approx([x.score for x in b.boxes], rel=1e-3)


@pytest.mark.parametrize("classes", [CLASSES, ["kart"]], ids=["two classes", "one class"])
def test_score_is_probability_of_the_box_tokens(trained, classes):
    """Recompute a box's score by teacher forcing the generated tokens: same number. Over the box's
    whole text when the prompt asks for two classes (the label is a decision), over its coordinates
    when it asks for one."""
    fam, model, proc = trained("paligemma")
    s = dataclasses.replace(data()[0], classes=classes)
    (pred,) = predict(model, proc, fam, [s], max_new_tokens=60)
    batch = fam.build_batch(proc, [s], train=False)
    gen = proc.tokenizer(pred.text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    full = {**batch, "input_ids": torch.cat([batch["input_ids"], gen], 1),
            "attention_mask": torch.ones(1, batch["input_ids"].shape[1] + gen.shape[1], dtype=torch.long),
            # generated tokens are suffix (type 1: causal), the prompt is the bidirectional prefix
            "token_type_ids": torch.cat([batch["token_type_ids"], torch.ones_like(gen)], 1)}
    with torch.no_grad():
        logits = model(**full).logits[0, batch["input_ids"].shape[1] - 1:-1]
    lps = torch.log_softmax(logits.float(), -1).gather(-1, gen[0, :, None])[:, 0].tolist()
    text, ends = token_char_ends(proc.tokenizer, gen[0].tolist())
    assert text == pred.text
    spans = fam.decode_spans(text, 96, 64, classes)
    assert spans, text
    assert [round(span_score(lps, ends, *sp.scored), 4) for sp in spans] == \
        [round(b.score, 4) for b in pred.boxes]
    whole = [round(span_score(lps, ends, sp.start, sp.end), 4) for sp in spans]
    assert (whole == [round(b.score, 4) for b in pred.boxes]) == (len(classes) > 1)


def test_span_score_uses_overlapping_tokens_only():
    lps = [math.log(0.5), math.log(0.25), math.log(1.0)]
    ends = [3, 6, 9]  # tokens cover [0,3) [3,6) [6,9)
    assert span_score(lps, ends, 0, 3) == pytest.approx(0.5)
    assert span_score(lps, ends, 2, 7) == pytest.approx((0.5 * 0.25 * 1.0) ** (1 / 3))
    assert span_score(lps, ends, 6, 9) == pytest.approx(1.0)


def test_predict_bad_image(trained, tmp_path):
    fam, model, proc = trained("paligemma")
    bad = tmp_path / "frame.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(BadImage, match="frame.png"):
        predict(model, proc, fam, [Sample(bad, classes=CLASSES, image_id=9)])
