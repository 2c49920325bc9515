"""Each family on real SuperTuxKart frames and hand-made COCO-style images. Expected answers are
worked out by hand from the boxes in tests/data/stk/*_info.json (600x400 frame, images 300x200:
pixel = frame / 2), written in the comments, not taken from the generator."""
from __future__ import annotations

import pytest

from backend.qa.base import ImageView, Obj, render
from tests.qa.helpers import ALL, answers, run, scaled, stk_views

V = stk_views()
# 17d01 (cornfield_crossing, seed 5): ego_ids [0] -> Puffy, NOT in the detections, so the ego's
# reference point is the bottom centre (150, 200). Boxes in pixels and their centres:
#   Suzanne (1): 131.8, 92.95, 164.35, 121.6   centre (148.08, 107.28)
#   Xue     (2): 165.25, 86.35, 210.3, 123.3   centre (187.78, 104.83)
#   Emule   (3): 34.8, 100.65, 113.5, 165.55   centre (74.15, 133.10)
#   Kiki    (4): 110.35, 89.9, 166.1, 155.4    centre (138.23, 122.65)
# 1eb00 (cornfield_crossing, seed 4): ego_ids [0] -> Gnu, detected:
#   Gnu    (0): 86.9, 94.75, 178.9, 199.0      centre (132.90, 146.88)
#   Pepper (2): 141.75, 85.0, 157.1, 119.05    centre (149.43, 102.03)
# ba720 (hacienda, seed 5): no karts in view, ego Puffy.


def test_identity_stk():
    a = run("identity", V["17d01"], max_boxes=4)
    assert answers(a, "ego_name") == {"What is the name of the ego kart?": "Puffy"}
    assert answers(a, "track") == {"Which track is this?": "cornfield_crossing"}
    by_box = {(it.boxes[0]["x1"], it.boxes[0]["y1"]): it.answer for it in a if it.template_id == "box_content"}
    assert by_box == {(131.8, 92.95): "Suzanne", (165.25, 86.35): "Xue", (34.8, 100.65): "Emule", (110.35, 89.9): "Kiki"}
    box_q = next(it for it in a if it.template_id == "box_content")
    assert box_q.question == "What is in the box {box0}?"
    b = run("identity", V["1eb00"])
    assert answers(b, "ego_name") == {"What is the name of the ego kart?": "Gnu"}
    # the ego's name is asked only when its kart is in the picture, if so configured
    assert not answers(run("identity", V["17d01"], ego_name_needs_box=True), "ego_name")
    assert answers(run("identity", V["1eb00"], ego_name_needs_box=True), "ego_name") == {
        "What is the name of the ego kart?": "Gnu"}


def test_counting_stk():
    a = run("counting", V["17d01"])
    assert answers(a, "count_class") == {"How many karts are in the image?": "4"}
    assert answers(a, "count_total") == {"How many objects are in the image?": "4"}
    assert answers(a, "count_listing") == {"How many objects of each class are in the image?": "kart: 4"}
    assert answers(run("counting", V["1eb00"]), "count_listing") == {
        "How many objects of each class are in the image?": "kart: 2"}


def test_spatial_relative_to_ego_not_in_view():
    a = run("spatial", V["17d01"], max_objects=4, max_pairs=0, all_templates=True)
    # reference (150, 200): every kart is above the bottom edge -> in front; x < 150 -> left
    assert answers(a, "ego_where") == {
        "Where is Suzanne relative to the ego kart?": "front and left",   # 148.08 < 150
        "Where is Xue relative to the ego kart?": "front and right",      # 187.78 > 150
        "Where is Emule relative to the ego kart?": "front and left",     # 74.15
        "Where is Kiki relative to the ego kart?": "front and left",      # 138.23
    }
    assert answers(a, "ego_left_right")["Is Xue to the left or to the right of the ego kart?"] == "right"
    assert answers(a, "ego_front_behind")["Is Emule in front of or behind the ego kart?"] == "in front"


def test_spatial_relative_to_detected_ego_and_between_karts():
    a = run("spatial", V["1eb00"], all_templates=True)
    # Pepper (149.43, 102.03) vs Gnu's centre (132.90, 146.88): right, and smaller y -> in front
    assert answers(a, "ego_where") == {"Where is Pepper relative to the ego kart?": "front and right"}
    assert not [it for it in a if it.template_id.startswith("pair_")]  # the ego is not a pair member
    pairs = run("spatial", V["17d01"], ego=False, max_pairs=6, all_templates=True)
    lr, fb = answers(pairs, "pair_left_right"), answers(pairs, "pair_front_behind")
    # Emule (74.15, 133.10) vs Kiki (138.23, 122.65): left, larger y -> behind
    assert lr.get("Is Emule to the left or to the right of Kiki?", "left") == "left"
    assert lr.get("Is Kiki to the left or to the right of Emule?", "right") == "right"
    assert fb.get("Is Emule in front of or behind Kiki?", "behind") == "behind"
    assert fb.get("Is Kiki in front of or behind Emule?", "in front") == "in front"
    # Xue (187.78, 104.83) vs Suzanne (148.08, 107.28): right and in front
    assert lr.get("Is Xue to the left or to the right of Suzanne?", "right") == "right"
    assert fb.get("Is Suzanne in front of or behind Xue?", "behind") == "behind"
    assert len(lr) == 6 and len(fb) == 6  # all 6 pairs of 4 karts, no ties
    # by default one template per object / pair; every answer agrees with the centres above
    centres = {"Suzanne": (148.08, 107.28), "Xue": (187.78, 104.83), "Emule": (74.15, 133.10), "Kiki": (138.23, 122.65),
               "the ego kart": (150, 200)}
    expect = {}
    for a_, (ax, ay) in centres.items():
        for b_, (bx, by) in centres.items():
            if a_ != b_ and a_ != "the ego kart":
                lr_, fb_ = ("left" if ax < bx else "right"), ("front" if ay < by else "behind")
                expect[f"Is {a_} to the left or to the right of {b_}?"] = lr_
                expect[f"Is {a_} in front of or behind {b_}?"] = "in front" if fb_ == "front" else "behind"
                expect[f"Where is {a_} relative to {b_}?"] = f"{fb_} and {lr_}"
    for seed in range(5):
        one = run("spatial", V["17d01"], seed=seed, max_objects=4, max_pairs=6)
        assert len(one) == 4 + 6
        assert all(expect[it.question] == it.answer for it in one)


def test_course_rule_ego_nearest_centre():
    v = stk_views(drop_ego_ids=True)["17d01"]
    # no ego_ids: the box nearest the centre (150, 100) is Suzanne (148.08, 107.28)
    assert answers(run("identity", v), "ego_name") == {"What is the name of the ego kart?": "Suzanne"}
    where = answers(run("spatial", v, max_objects=4, all_templates=True), "ego_where")
    assert where == {"Where is Xue relative to the ego kart?": "front and right",   # y 104.83 < 107.28
                     "Where is Emule relative to the ego kart?": "behind and left",  # y 133.10 > 107.28
                     "Where is Kiki relative to the ego kart?": "behind and left"}   # y 122.65 > 107.28


def test_race_stk():
    a = run("race", V["17d01"])
    # distance_down_track: Puffy (ego) 59.6; in view Suzanne 66.59, Xue 66.57, Emule 64.58, Kiki 64.84:
    # all four ahead -> 5th of the five; Suzanne furthest; overall 6 karts ahead of 59.6 -> 7th of 8
    assert [it.answer for it in a if it.template_id == "position_in_view"] == ["5th"]
    assert [it.answer for it in a if it.template_id == "leader_in_view"] == ["Suzanne"]
    assert [it.answer for it in a if it.template_id == "position_overall"] == ["7th of 8"]
    assert [it.answer for it in a if it.template_id == "leader_overall"] == ["Suzanne"]
    b = run("race", V["1eb00"])
    # Gnu (ego) 49.41, Pepper 51.84 -> 2nd in view, Pepper leads; overall only Pepper is ahead -> 2nd of 8
    assert {it.template_id: it.answer for it in b} == {"position_in_view": "2nd", "leader_in_view": "Pepper",
                                                        "position_overall": "2nd of 8", "leader_overall": "Pepper"}


def test_frame_with_no_karts():
    v = V["ba720"]
    assert v.objs == []
    out = {f: run(f, v, negatives_ratio=1.0) for f in ALL}
    assert out["spatial"] == []
    assert [it.template_id for it in out["identity"]] == ["ego_name", "track"]  # no box to ask about
    assert answers(out["counting"], "count_class") == {"How many karts are in the image?": "0"}
    assert answers(out["counting"], "count_total") == {"How many objects are in the image?": "0"}
    # hacienda: ego Puffy 717.67 is the furthest of all eight -> 1st of 8; nobody in view
    assert {it.template_id: it.answer for it in out["race"]} == {"position_overall": "1st of 8",
                                                                  "leader_overall": "Puffy"}
    assert all(it.template_id == "region_none" and it.answer == "nothing" for it in out["region"])
    (det,) = out["detection"]
    assert (det.answer, det.boxes, det.extra["classes"]) == ("", [], ["kart"])


def test_detection_target_in_reading_order():
    (det,) = run("detection", V["17d01"])
    # by top edge: Xue 86.35, Kiki 89.9, Suzanne 92.95, Emule 100.65
    assert [b["y1"] for b in det.boxes] == [86.35, 89.9, 92.95, 100.65]
    assert det.answer == "{box0} ; {box1} ; {box2} ; {box3}" and det.extra["task"] == "detect"
    assert render(det.answer, det.boxes).startswith("kart [165, 86, 210, 123] ; kart [110, 90, 166, 155]")


# ---------------------------------------------------------------- COCO-style, hand-made boxes
def coco_view(labels=("person", "dog", "cat", "car")) -> ImageView:
    return ImageView("street.jpg", 640, 480, {}, [
        Obj("dog", 10, 200, 110, 300),      # centre (60, 250)
        Obj("cat", 400, 100, 500, 220),     # centre (450, 160)
        Obj("person", 300, 50, 360, 400),   # two persons: neither can be named
        Obj("person", 500, 300, 600, 400),
    ], list(labels))


def test_coco_counting_with_a_negative():
    a = run("counting", coco_view(), negatives_ratio=1.0)
    assert answers(a, "count_class") == {"How many persons are in the image?": "2", "How many dogs are in the image?": "1",
                                         "How many cats are in the image?": "1", "How many cars are in the image?": "0"}
    assert answers(a, "count_listing") == {"How many objects of each class are in the image?": "cat: 1, dog: 1, person: 2"}
    assert answers(a, "count_total") == {"How many objects are in the image?": "4"}
    assert answers(run("counting", coco_view(), negatives_ratio=0.0), "count_class").get(
        "How many cars are in the image?") is None


def test_coco_spatial_named_by_unique_label_and_no_ego():
    a = run("spatial", coco_view(), all_templates=True)
    assert not [it for it in a if it.template_id.startswith("ego_")]  # no ego kart in a street photo
    lr, fb = answers(a, "pair_left_right"), answers(a, "pair_front_behind")
    # dog (60, 250) vs cat (450, 160): the dog is left and lower (larger y) -> behind
    assert lr == ({"Is the dog to the left or to the right of the cat?": "left"} if "Is the dog to the left or to the right of the cat?" in lr
                  else {"Is the cat to the left or to the right of the dog?": "right"})
    assert list(fb.values()) == (["behind"] if "Is the dog in front of or behind the cat?" in fb else ["in front"])
    assert answers(run("identity", coco_view()), "box_content").keys() == {"What is in the box {box0}?"}


def test_region_hand_made_full_and_partial():
    v = ImageView("one.png", 100, 100, {}, [Obj("cat", 20, 20, 60, 60)], ["cat"])
    full = run("region", v, count=3, partial=0.0, margin=0.0, negatives_ratio=0.0)
    # no margin: the region is the cat's box, which holds the whole cat
    assert [(it.answer, it.boxes[0]) for it in full] == [
        ("cat", {"label": "region", "x1": 20.0, "y1": 20.0, "x2": 60.0, "y2": 60.0})] * 3
    part = run("region", v, count=5, partial=1.0, margin=0.0, negatives_ratio=0.0)
    assert part
    for it in part:
        r = it.boxes[0]
        inside = (min(r["x2"], 60) - max(r["x1"], 20)) * (min(r["y2"], 60) - max(r["y1"], 20)) / 1600
        assert it.answer == f"cat ({int(inside * 10 + 0.5) * 10}% visible)" and 0.05 < inside < 0.95


def test_region_answers_agree_with_the_boxes():
    """Every region answer, recomputed here from the region and the boxes, across seeds."""
    views = [coco_view(), *V.values()]
    for seed in range(20):
        for v in views:
            for it in run("region", v, seed=seed, negatives_ratio=1.0, count=3):
                r = it.boxes[0]
                parts = []
                for o in v.objs:
                    w = min(r["x2"], o.x2) - max(r["x1"], o.x1)
                    h = min(r["y2"], o.y2) - max(r["y1"], o.y1)
                    pct = int((max(w, 0) * max(h, 0)) / o.area * 10 + 0.5) * 10 if w > 0 and h > 0 else 0
                    if pct >= 10:
                        parts.append((-pct, o.label if pct == 100 else f"{o.label} ({pct}% visible)"))
                got = sorted(it.answer.split(", ")) if it.answer != "nothing" else []
                assert got == sorted(p for _, p in parts), (seed, v.file_name, it)
                if it.template_id == "region_none":
                    assert it.answer == "nothing"


# ---------------------------------------------------------------- invariants
def _all(view, seed=0):
    return [(f, it) for f in ALL for it in run(f, view, seed=seed, negatives_ratio=1.0)]


def test_same_seed_same_pairs_and_other_seed_differs():
    for v in [*V.values(), coco_view()]:
        assert _all(v, 3) == _all(v, 3)
    assert any(_all(v, 3) != _all(v, 4) for v in V.values())


@pytest.mark.parametrize("s", [2.0, 0.5])
def test_resized_image_same_answers_scaled_boxes(s):
    for v in [*V.values(), coco_view(), *stk_views(drop_ego_ids=True).values()]:
        a, b = _all(v), _all(scaled(v, s))
        assert [(f, it.template_id, it.question, it.answer) for f, it in a] == \
               [(f, it.template_id, it.question, it.answer) for f, it in b]
        for (_, x), (_, y) in zip(a, b):
            assert len(x.boxes) == len(y.boxes)
            for bx, by in zip(x.boxes, y.boxes):
                assert bx["label"] == by["label"]
                for k in ("x1", "y1", "x2", "y2"):
                    assert by[k] == pytest.approx(bx[k] * s, abs=0.02)


def test_zero_area_and_degenerate_boxes_are_skipped_by_the_loader():
    from backend.qa.base import valid_box

    assert not valid_box(10, 10, 10, 20) and not valid_box(10, 10, 20, 10) and not valid_box(0, 0, float("nan"), 1)
    assert valid_box(0, 0, 1, 1)


def test_meta_without_track_or_ego():
    v = ImageView("x.jpg", 300, 200, {"race_id": "r1"}, [Obj("kart", 10, 10, 50, 50)], ["kart"])
    ids = [it.template_id for it in run("identity", v)]
    assert ids == ["box_content"]  # no track question, no ego
    assert run("race", v) == []

