"""worker/pooling.py: the adapter's boxes pooled with the base's by weighted box fusion."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.metrics import ImageTruth, boxes_array, coco_metrics, iou_matrix
from worker.metrics import box_score as score
from worker.pooling import IOU, fuse, pool
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


def one_per_object(bs: list[Box]) -> list[Box]:
    """Boxes of which no two of a label overlap by IOU (greedy, in the given order)."""
    kept: list[Box] = []
    for b in bs:
        if all(k.label != b.label or iou(k, b) < IOU for k in kept):
            kept.append(b)
    return kept


@settings(max_examples=300, deadline=None)
@given(boxes(), boxes())
def test_fuse_makes_each_box_a_weighted_mean_of_boxes_of_its_label(a, b):
    got = fuse([a, b])
    assert len(got) <= len(a) + len(b)
    assert [score(k) for k in got] == sorted((score(k) for k in got), reverse=True)
    for k in got:
        same = [x for x in a + b if x.label == k.label]
        assert same  # no label invented
        for side in ("x1", "y1", "x2", "y2"):  # inside the span of its label's boxes
            lo, hi = min(getattr(x, side) for x in same), max(getattr(x, side) for x in same)
            assert lo - 1e-6 <= getattr(k, side) <= hi + 1e-6
        assert 0 <= score(k) <= max(score(x) for x in same) + 1e-9


@settings(max_examples=300, deadline=None)
@given(boxes())
def test_two_models_that_agree_give_their_boxes_back_and_one_model_alone_counts_half(bs):
    bs = one_per_object(sorted(bs, key=score, reverse=True))

    def same(got: list[Box], factor: float) -> bool:  # each box back once, its score times factor
        return len(got) == len(bs) and all(
            sum(k.label == b.label and score(k) == pytest.approx(score(b) * factor)
                and [k.x1, k.y1, k.x2, k.y2] == pytest.approx([b.x1, b.y1, b.x2, b.y2]) for k in got) == 1
            for b in bs)

    assert same(fuse([bs, list(bs)]), 1.0) and same(fuse([bs]), 1.0)
    assert same(fuse([bs, []]), 0.5)


def test_pool_adds_the_base_boxes_the_adapter_forgot_and_fuses_the_ones_it_kept():
    near, followed = (10, 60, 60, 100), (130, 40, 160, 60)
    adapter = [Prediction(1, "detect", "<adapter text>", [Box("kart", *followed, 0.9)])]
    base = [Prediction(1, "detect", "<base text>", [Box("kart", *near, 0.6), Box("kart", 134, 44, 160, 60, 0.3)])]
    got = pool(adapter, base)[0]
    assert got.text == "<adapter text>"  # the adapter's raw output is what the run keeps
    # the followed kart: both models' boxes, 3 : 1 by score, at their mean score; the near kart only
    # the base found: in place at half its score
    assert [(b.x1, b.y1, b.x2, b.y2) for b in got.boxes] == [(131, 41, 160, 60), near]
    assert [b.score for b in got.boxes] == pytest.approx([0.6, 0.3])
    truth = [ImageTruth(1, 200, 120, [Box("kart", *near), Box("kart", *followed)])]
    alone, pooled = coco_metrics(truth, {1: adapter[0].boxes}), coco_metrics(truth, {1: got.boxes})
    assert alone["ap50"] == pytest.approx(0.5, abs=0.01) and pooled["ap50"] == pytest.approx(1.0)


def test_a_box_joins_the_fused_box_it_overlaps_most():
    # two clusters; the third box overlaps both, the second more
    a, b = Box("kart", 0, 0, 10, 10, 0.9), Box("kart", 6, 0, 16, 10, 0.8)
    c = Box("kart", 5, 0, 15, 10, 0.7)  # IoU 0.33 with a, 0.82 with b
    got = fuse([[a, b], [c]])
    assert [(k.x1, k.x2) for k in got] == [pytest.approx((5 + 8 / 15, 15 + 8 / 15)), (0, 10)]  # 8 : 7 by score
    assert [k.score for k in got] == pytest.approx([0.75, 0.45])  # (0.8 + 0.7) / 2; 0.9, one of two models


def test_pool_refuses_lists_that_do_not_line_up():
    a = [Prediction(1, "detect", "", []), Prediction(2, "detect", "", [])]
    with pytest.raises(ValueError, match="2 adapter predictions against 1"):
        pool(a, a[:1])
    with pytest.raises(ValueError, match="image 2 of the adapter against image 1"):
        pool(a, [a[0], a[0]])
