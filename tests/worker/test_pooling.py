"""worker/pooling.py: the adapter's boxes pooled with the base's by per-label greedy NMS."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.metrics import ImageTruth, boxes_array, coco_metrics, iou_matrix
from worker.metrics import box_score as score
from worker.pooling import IOU, nms, pool
from worker.types import Box, Prediction


def iou(a: Box, b: Box) -> float:
    return float(iou_matrix(boxes_array([a]), boxes_array([b]))[0, 0])


@st.composite
def boxes(draw, n=st.integers(0, 12)):
    out = []
    for _ in range(draw(n)):
        x, y = draw(st.floats(0, 90)), draw(st.floats(0, 90))
        w, h = draw(st.floats(1, 40)), draw(st.floats(1, 40))
        out.append(Box(draw(st.sampled_from(["kart", "bomb"])), x, y, x + w, y + h,
                       draw(st.one_of(st.none(), st.floats(0, 1)))))
    return out


@settings(max_examples=300, deadline=None)
@given(boxes())
def test_nms_keeps_one_box_per_object_and_drops_only_under_a_better_one(bs):
    kept = nms(bs)
    assert all(any(k is b for b in bs) for k in kept)  # nothing invented, nothing changed
    assert [score(b) for b in kept] == sorted((score(b) for b in kept), reverse=True)
    for i, a in enumerate(kept):  # no two kept boxes of one label are one object
        assert all(a.label != b.label or iou(a, b) < IOU for b in kept[i + 1:])
    for b in bs:  # a dropped box lies under a kept box of its label that scores at least as high
        if not any(k is b for k in kept):
            assert any(k.label == b.label and iou(k, b) >= IOU and score(k) >= score(b) for k in kept)


def test_pool_adds_the_base_boxes_the_adapter_forgot_and_merges_the_ones_it_kept():
    near, followed = (10, 60, 60, 100), (130, 40, 160, 60)
    adapter = [Prediction(1, "detect", "<adapter text>", [Box("kart", *followed, 0.9)])]
    base = [Prediction(1, "detect", "<base text>", [Box("kart", *near, 0.6), Box("kart", 131, 41, 160, 60, 0.5)])]
    got = pool(adapter, base)[0]
    assert got.text == "<adapter text>"  # the adapter's raw output is what the run keeps
    assert [(b.x1, b.y1, b.x2, b.y2, b.score) for b in got.boxes] == [(*followed, 0.9), (*near, 0.6)]
    truth = [ImageTruth(1, 200, 120, [Box("kart", *near), Box("kart", *followed)])]
    alone, pooled = coco_metrics(truth, {1: adapter[0].boxes}), coco_metrics(truth, {1: got.boxes})
    assert alone["ap50"] == pytest.approx(0.5, abs=0.01) and pooled["ap50"] == pytest.approx(1.0)


def test_pool_refuses_lists_that_do_not_line_up():
    a = [Prediction(1, "detect", "", []), Prediction(2, "detect", "", [])]
    with pytest.raises(ValueError, match="2 adapter predictions against 1"):
        pool(a, a[:1])
    with pytest.raises(ValueError, match="image 2 of the adapter against image 1"):
        pool(a, [a[0], a[0]])
