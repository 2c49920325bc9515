"""worker/metrics.py against a direct pycocotools run and against numbers worked out on paper."""
from __future__ import annotations

import contextlib
import io
from fractions import Fraction

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from worker.metrics import (COCO_STAT_NAMES, ImageTruth, coco_metrics, detection_metrics, iou_matrix,
                            location_prior, majority_answer, match_metrics, normalize_answer, vqa_accuracy)
from worker.types import Box, Prediction

BACKENDS = ["faster_coco_eval", "pycocotools"]
CLASSES = ["kart", "banana", "bomb"]


def random_case(seed: int, *, tie_scores: bool = False):
    """Random GT and predictions as raw xyxy tuples (canonical labels), plus the same data as
    worker Boxes whose labels are case/whitespace variants. Some images have no GT, some
    predictions have a label ("dog") that no GT has."""
    rng = np.random.default_rng(seed)
    raw_gt, raw_dt, truths, preds = {}, {}, [], {}
    for img in range(1, 61):
        w, h = int(rng.integers(100, 800)), int(rng.integers(100, 600))
        gt = []
        for _ in range(0 if img % 7 == 0 else int(rng.integers(1, 9))):
            bw, bh = rng.uniform(4, min(w, h) * 0.6, 2)  # small, medium and large boxes
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            gt.append((str(rng.choice(CLASSES)), x, y, x + bw, y + bh))
        dt = []
        for lab, x1, y1, x2, y2 in gt:
            if rng.random() < 0.8:
                j = rng.normal(0, 0.12 * (x2 - x1), 4)
                plab = lab if rng.random() < 0.85 else str(rng.choice(CLASSES + ["dog"]))
                px1, px2 = sorted((x1 + j[0], x2 + j[2]))  # keep jittered boxes well-formed
                py1, py2 = sorted((y1 + j[1], y2 + j[3]))
                dt.append((plab, px1, py1, px2, py2, float(rng.random())))
        for _ in range(int(rng.integers(0, 4))):  # pure false positives
            x, y = rng.uniform(0, w - 30), rng.uniform(0, h - 30)
            dt.append((str(rng.choice(CLASSES + ["dog"])), x, y, x + rng.uniform(5, 80), y + rng.uniform(5, 80),
                       float(rng.random())))
        if tie_scores:
            dt = [d[:5] + (round(d[5], 1),) for d in dt]
        raw_gt[img], raw_dt[img] = (w, h, gt), dt
        variant = lambda s: [s, s.upper(), f"  {s.title()} "][int(rng.integers(0, 3))]  # noqa: E731
        truths.append(ImageTruth(img, w, h, [Box(variant(g[0]), *g[1:]) for g in gt]))
        preds[img] = [Box(variant(d[0]), *d[1:5], score=d[5]) for d in dt]
    return raw_gt, raw_dt, truths, preds


def reference_cocoeval(raw_gt, raw_dt):
    """Plain pycocotools: GT from raw dicts, detections through COCO.loadRes (its standard route)."""
    cat_ids = {n: i for i, n in enumerate(CLASSES + ["dog"], start=1)}
    images, anns, dets = [], [], []
    for img, (w, h, gt) in raw_gt.items():
        images.append({"id": img, "width": w, "height": h})
        for lab, x1, y1, x2, y2 in gt:
            anns.append({"id": len(anns) + 1, "image_id": img, "category_id": cat_ids[lab], "iscrowd": 0,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
        for lab, x1, y1, x2, y2, s in raw_dt[img]:
            dets.append({"image_id": img, "category_id": cat_ids[lab], "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns,
                      "categories": [{"id": i, "name": n} for n, i in cat_ids.items()]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_class = {}
    for k, name in enumerate(CLASSES):
        p = ev.eval["precision"][:, :, k, 0, -1]
        per_class[name] = (p[p > -1].mean(), p[0][p[0] > -1].mean())
    return ev.stats, per_class


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed,ties", [(0, False), (1, False), (2, True)])
def test_coco_numbers_equal_direct_pycocotools(backend, seed, ties):
    raw_gt, raw_dt, truths, preds = random_case(seed, tie_scores=ties)
    stats, per_class = reference_cocoeval(raw_gt, raw_dt)
    got = coco_metrics(truths, preds, backend=backend)
    assert 0.05 < got["map"] < 0.95  # a non-trivial case
    for name, ref in zip(COCO_STAT_NAMES, stats):
        assert got[name] == pytest.approx(ref, abs=1e-9), name
    for name, (ap, ap50) in per_class.items():
        assert got["per_class"][name]["ap"] == pytest.approx(ap, abs=1e-9)
        assert got["per_class"][name]["ap50"] == pytest.approx(ap50, abs=1e-9)
    assert "dog" not in got["per_class"]  # no GT: COCO has no AP for it


@pytest.mark.parametrize("backend", BACKENDS)
def test_perfect_predictions_give_one(backend):
    _, _, truths, _ = random_case(3)
    preds = {g.image_id: [Box(b.label, b.x1, b.y1, b.x2, b.y2, score=0.5) for b in g.boxes] for g in truths}
    m = detection_metrics(truths, preds, backend=backend)
    for k in COCO_STAT_NAMES:
        if k != "ar1":  # AR with one detection per image: images hold up to 8 boxes
            assert m[k] == pytest.approx(1.0, abs=1e-12), k
    assert m["ar1"] < 1.0
    assert (m["precision"], m["recall"], m["f1"], m["mean_iou"]) == (1.0, 1.0, 1.0, 1.0)
    assert m["fp"] == m["fn"] == m["wrong_label"] == 0 and m["tp"] == m["n_gt"]
    assert all(v["ap"] == 1.0 and v["ap50"] == 1.0 for v in m["per_class"].values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_iou_exactly_point_six(backend):
    # GT 10x10 at the origin, prediction 10x6: intersection 60, union 100 -> IoU 0.6 exactly.
    # COCO matches when IoU >= threshold; its thresholds are linspace(.5, .95, 10) and the third
    # is exactly 0.6. So the pair counts at .50, .55, .60 (AP 1 each) and not at .65 .. .95 (AP 0)
    # -> mAP = 3/10, AP50 = 1, AP75 = 0, AR@100 = 3/10. Area 100 < 32^2: "small"; no medium/large GT.
    truths = [ImageTruth(1, 64, 64, [Box("kart", 0, 0, 10, 10)])]
    preds = {1: [Box("kart", 0, 0, 10, 6, score=0.9)]}
    assert iou_matrix(np.array([[0, 0, 10, 6]]), np.array([[0, 0, 10, 10]]))[0, 0] == 0.6
    m = detection_metrics(truths, preds, backend=backend)
    assert m["map"] == pytest.approx(0.3, abs=1e-12)
    assert (m["ap50"], m["ap75"]) == pytest.approx((1.0, 0.0), abs=1e-12)
    assert m["ap_small"] == pytest.approx(0.3, abs=1e-12) and m["ap_medium"] is None and m["ap_large"] is None
    assert m["ar100"] == pytest.approx(0.3, abs=1e-12)
    assert m["tp"] == 1 and m["mean_iou"] == 0.6
    assert match_metrics(truths, preds, iou_thr=0.55)["tp"] == 1
    assert match_metrics(truths, preds, iou_thr=0.6)["tp"] == 1  # >= : the boundary counts
    assert match_metrics(truths, preds, iou_thr=0.65)["tp"] == 0


def hand_case():
    truths = [
        ImageTruth("a", 100, 100, [Box("kart", 0, 0, 10, 10), Box("kart", 20, 0, 30, 10)]),
        ImageTruth("b", 100, 100, [Box("kart", 0, 0, 10, 10), Box("Banana", 50, 50, 60, 60)]),
        ImageTruth("c", 100, 100, []),
    ]
    preds = [
        # a: the .9 box (IoU .8 with GT1) is matched first and takes GT1, so the exact .8 box
        #    finds GT1 used and GT2 at IoU 0 -> FP. The .7 box has IoU 50/100 = .5 with GT2 -> TP.
        #    tp 2, fp 1, fn 0, IoUs .8 and .5; image f1 = 2*2 / (4+1+0) = .8
        Prediction("a", "detect", "", [Box("kart", 0, 0, 10, 8, score=0.9), Box("KART", 0, 0, 10, 10, score=0.8),
                                       Box("kart", 20, 0, 30, 5, score=0.7)]),
        # b: "banana" on the kart GT (IoU 1, other label) -> FP and wrong_label; second banana box
        #    overlaps the banana GT by 8*10 = 80, union 120 -> IoU 2/3 -> TP; kart GT missed -> FN.
        #    tp 1, fp 1, fn 1, wrong 1; image f1 = 2 / (2+1+1) = .5
        Prediction("b", "detect", "", [Box("banana", 0, 0, 10, 10, score=0.95),
                                       Box(" banana ", 52, 50, 62, 60, score=0.6)]),
        # c: no GT: both boxes FP, one of them with a label no GT has ("dog"). image f1 = 0
        Prediction("c", "detect", "", [Box("Kart ", 0, 0, 5, 5, score=0.5), Box("dog", 0, 0, 5, 5, score=0.4)]),
    ]
    # Totals: TP 3, FP 4, FN 1 -> P 3/7, R 3/4, F1 = 2PR/(P+R) = (18/28)/(33/28) = 6/11,
    # mean IoU = (.8 + .5 + 2/3) / 3 = 59/90.
    # kart: TP 2 (IoU .8, .5), FP 2 (a dup, c), FN 1 -> P 1/2, R 2/3, F1 4/7, mean IoU .65
    # banana: TP 1 (2/3), FP 1, FN 0 -> P 1/2, R 1, F1 2/3, mean IoU 2/3
    # dog: TP 0, FP 1, FN 0, not a GT class
    return truths, preds


def test_hand_checked_precision_recall_f1():
    truths, preds = hand_case()
    m = detection_metrics(truths, preds)
    assert (m["tp"], m["fp"], m["fn"], m["wrong_label"]) == (3, 4, 1, 1)
    assert m["precision"] == pytest.approx(3 / 7) and m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(float(Fraction(6, 11)))
    assert m["mean_iou"] == pytest.approx(59 / 90)
    k, b, d = m["per_class"]["kart"], m["per_class"]["banana"], m["per_class"]["dog"]
    assert (k["tp"], k["fp"], k["fn"]) == (2, 2, 1)
    assert (k["precision"], k["recall"], k["f1"]) == pytest.approx((1 / 2, 2 / 3, 4 / 7))
    assert k["mean_iou"] == pytest.approx(0.65)
    assert (b["tp"], b["fp"], b["fn"]) == (1, 1, 0)
    assert (b["precision"], b["recall"], b["f1"], b["mean_iou"]) == pytest.approx((1 / 2, 1, 2 / 3, 2 / 3))
    assert (d["tp"], d["fp"], d["known"], d["ap"]) == (0, 1, False, None)
    per_image = {r["image_id"]: r for r in m["per_image"]}
    assert [per_image[i]["f1"] for i in "abc"] == pytest.approx([0.8, 0.5, 0.0])
    assert (per_image["a"]["tp"], per_image["a"]["fp"], per_image["a"]["fn"]) == (2, 1, 0)
    assert per_image["a"]["mean_iou"] == pytest.approx(0.65)
    assert (per_image["b"]["tp"], per_image["b"]["fp"], per_image["b"]["fn"], per_image["b"]["wrong_label"]) == (1, 1, 1, 1)
    assert (per_image["c"]["fp"], per_image["c"]["mean_iou"]) == (2, None)
    assert m["unknown_predictions"] == 1 and any("outside the ground-truth classes" in w for w in m["warnings"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_unknown_labels_are_false_positives_not_crashes(backend):
    _, _, truths, preds = random_case(4)
    base = detection_metrics(truths, preds, backend=backend)
    extra = {i: list(bs) + [Box("Spaceship", g.boxes[0].x1, g.boxes[0].y1, g.boxes[0].x2, g.boxes[0].y2, score=1.0)]
             for (i, bs), g in zip(preds.items(), truths) if g.boxes}
    more = detection_metrics(truths, {**preds, **extra}, backend=backend)
    assert more["fp"] == base["fp"] + len(extra) and more["precision"] < base["precision"]
    assert more["wrong_label"] == base["wrong_label"] + len(extra)  # they sit exactly on a GT box
    assert more["recall"] == base["recall"]
    # pycocotools averages AP over categories with GT only, so COCO numbers do not move
    assert more["map"] == pytest.approx(base["map"], abs=1e-12)
    assert more["per_class"]["spaceship"]["known"] is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_predictions_and_images_without_gt(backend):
    _, _, truths, _ = random_case(5)
    m = detection_metrics(truths, {}, backend=backend)  # pycocotools' loadRes would crash here
    assert m["map"] == 0.0 and m["ap50"] == 0.0 and m["ar100"] == 0.0
    assert m["tp"] == 0 and m["fn"] == m["n_gt"] and m["precision"] == 0.0 and m["mean_iou"] is None
    # no GT anywhere: COCO has nothing to average -> None, matching still counts the FPs
    m = detection_metrics([ImageTruth(1, 50, 50), ImageTruth(2, 50, 50)], {1: [Box("kart", 0, 0, 9, 9, score=0.3)]},
                          backend=backend)
    assert m["map"] is None and m["fp"] == 1 and [r["f1"] for r in m["per_image"]] == [0.0, 1.0]
    # a prediction on an image without GT lowers AP of its class
    truths = [ImageTruth(1, 50, 50, [Box("kart", 0, 0, 20, 20)]), ImageTruth(2, 50, 50)]
    good = {1: [Box("kart", 0, 0, 20, 20, score=0.5)]}
    bad = {**good, 2: [Box("kart", 0, 0, 20, 20, score=0.9)]}
    assert detection_metrics(truths, good, backend=backend)["map"] == pytest.approx(1.0, abs=1e-12)
    assert detection_metrics(truths, bad, backend=backend)["map"] == pytest.approx(0.5, abs=1e-12)


def test_none_scores_count_as_one_and_warn():
    _, _, truths, preds = random_case(6)
    unscored = {i: [Box(b.label, b.x1, b.y1, b.x2, b.y2) for b in bs] for i, bs in preds.items()}
    ones = {i: [Box(b.label, b.x1, b.y1, b.x2, b.y2, score=1.0) for b in bs] for i, bs in preds.items()}
    a, b = detection_metrics(truths, unscored), detection_metrics(truths, ones)
    assert a["map"] == b["map"] and a["tp"] == b["tp"]
    assert any("no score" in w for w in a["warnings"]) and not any("no score" in w for w in b["warnings"])


def test_inputs_prediction_list_tuples_and_bad_ids():
    truths, preds = hand_case()
    as_map = {p.image_id: p.boxes for p in preds}
    as_tuples = [(g.image_id, g.width, g.height, g.boxes) for g in truths]
    assert detection_metrics(as_tuples, as_map) == detection_metrics(truths, preds)
    with pytest.raises(ValueError, match="missing from the ground truth"):
        detection_metrics(truths, {"zzz": []})
    with pytest.raises(ValueError, match="duplicate"):
        detection_metrics(truths + truths[:1], {})
    # classes without GT in this split get no AP but do not break anything
    m = detection_metrics(truths, preds, classes=["kart", "banana", "bomb"])
    assert m["per_class"]["bomb"]["ap"] is None and m["per_class"]["kart"]["ap"] is not None


def test_iou_matrix_matches_scalar_formula():
    rng = np.random.default_rng(7)
    a = rng.uniform(0, 50, (13, 4))
    b = rng.uniform(0, 50, (9, 4))
    b[0] = [5, 5, 5, 9]  # zero width
    b[1] = [30, 30, 20, 20]  # inverted: area 0

    def iou(p, q):
        iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        area = lambda r: max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])  # noqa: E731
        u = area(p) + area(q) - iw * ih
        return iw * ih / u if u > 0 else 0.0

    got = iou_matrix(a, b)
    assert got.shape == (13, 9)
    assert np.allclose(got, [[iou(p, q) for q in b] for p in a], atol=1e-12)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 9)
    # an inverted predicted box has area 0: it never matches, in both metric paths
    truths = [ImageTruth(1, 64, 64, [Box("kart", 0, 0, 10, 10)])]
    m = detection_metrics(truths, {1: [Box("kart", 10, 10, 0, 0, score=1.0)]})
    assert (m["tp"], m["fp"], m["map"]) == (0, 1, 0.0)


def test_normalize_answer():
    assert normalize_answer("  The  Two.") == "2"
    assert normalize_answer("an Apple!?") == "apple"
    assert normalize_answer("Twenty one") == "20 1"
    assert normalize_answer("zero") == "0" and normalize_answer("twenty-one") == "twenty-one"
    assert normalize_answer("3.5") == "3.5" and normalize_answer("Yes") == "yes"
    assert normalize_answer("left of the kart") == "left of kart"
    assert normalize_answer("theater") == "theater"  # articles are whole words only
    assert normalize_answer(None) == ""


def test_vqa_accuracy_overall_and_per_type():
    preds = ["Three", "3", "left", None, "Tux.", "puffy"]
    refs = ["3", "three karts", "Left", "right", "tux", "tux"]
    types = ["count", "count", "left_right", "left_right", "ego", "ego"]
    r = vqa_accuracy(preds, refs, types)
    assert (r["correct"], r["n"]) == (3, 6) and r["accuracy"] == 0.5
    assert r["per_type"]["count"] == {"accuracy": 0.5, "correct": 1, "n": 2}
    assert r["per_type"]["left_right"]["accuracy"] == 0.5 and r["per_type"]["ego"]["accuracy"] == 0.5
    assert vqa_accuracy(["yes"], ["Yes "])["per_type"] == {"other": {"accuracy": 1.0, "correct": 1, "n": 1}}
    assert vqa_accuracy([], [])["accuracy"] is None
    with pytest.raises(ValueError):
        vqa_accuracy(["x"], [])


def test_location_prior_is_the_median_box_scaled_to_each_image():
    # train: three 100x100 images with one "a" box each; the median box is (10, 20, 30, 40) / 100
    train = [ImageTruth(i, 100, 100, [Box("a", x, x + 10, x + 20, x + 30)]) for i, x in enumerate([0, 10, 50])]
    # evaluate: a 200x100 image whose box is the median box scaled (a hit), and one far away (a miss)
    ev = [ImageTruth("hit", 200, 100, [Box("a", 20, 20, 60, 40)]),
          ImageTruth("miss", 100, 100, [Box("a", 70, 70, 90, 90)])]
    m = location_prior(train, ev)
    assert m["boxes"] == {"a": [0.1, 0.2, 0.3, 0.4]}
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 1)
    assert m["mean_iou"] == pytest.approx(1.0)
    assert m["ap50"] == pytest.approx(0.5, abs=0.02)  # one of two GT found, at the top score


def test_majority_answer_gives_each_template_its_most_common_train_answer():
    train = [("counting", None, "1"), ("counting", None, " 1."), ("counting", None, "2"),
             ("spatial", "ego_front_behind", "behind"), ("spatial", "ego_front_behind", "Behind"),
             ("spatial", "ego_left_right", "left"), ("spatial", "ego_left_right", "left"),
             ("spatial", "ego_left_right", "right")]
    held_out = [("counting", None, "1"), ("counting", None, "3"), ("spatial", "ego_front_behind", "behind"),
                ("spatial", "ego_left_right", "left"), ("spatial", "ego_left_right", "right"),
                ("spatial", "ego_where", "behind and left"), ("race", "race_first", "first")]
    m = majority_answer(train, held_out)
    # counting: "1" (2 of 3, normalised)
    assert m["per_type"]["counting"] == {"accuracy": 0.5, "correct": 1, "n": 2, "answers": {"counting": "1"}}
    # spatial, per template: "behind" to in front / behind questions, "left" to left / right ones
    # (one answer for the whole family, "behind", would score 1 of 4); a template never asked in
    # train takes the family's most common answer
    sp = m["per_type"]["spatial"]
    assert sp["answers"] == {"ego_front_behind": "behind", "ego_left_right": "left", "ego_where": "behind"}
    assert (sp["correct"], sp["n"]) == (2, 4)
    # race: never asked in train -> no answer, always wrong
    assert m["per_type"]["race"] == {"accuracy": 0.0, "correct": 0, "n": 1, "answers": {"race_first": None}}
    assert m["accuracy"] == pytest.approx(3 / 7) and m["n"] == 7


def test_majority_answer_breaks_ties_by_the_answer_text():
    m = majority_answer([("counting", "t", "2"), ("counting", "t", "1")], [("counting", "t", "1")])
    assert m["per_type"]["counting"]["answers"] == {"t": "1"} and m["accuracy"] == 1.0


def test_image_dependence_tells_a_fixed_box_from_boxes_that_follow_the_objects():
    from worker.metrics import image_dependence

    truths = [ImageTruth(i, 100, 100, [Box("kart", 10 * i, 5 * i, 10 * i + 10, 5 * i + 10)]) for i in range(5)]
    follow = {i: [Box("kart", 10 * i + 1, 5 * i, 10 * i + 11, 5 * i + 10)] for i in range(5)}
    got = image_dependence(truths, follow)
    assert got["distinct_boxes"] == 1.0 and got["centre_pairs"] == 5
    assert got["centre_r_x"] == pytest.approx(1.0) and got["centre_r_y"] == pytest.approx(1.0)
    fixed = {i: [Box("kart", 0, 0, 60, 40)] for i in range(5)}
    got = image_dependence(truths, fixed)
    # one box everywhere: no image has its own answer, and no spread to correlate with
    assert got["distinct_boxes"] == 0.0 and got["centre_r_x"] is None and got["centre_pairs"] == 5
    # a box touching no true box is not paired; two images share an answer, three have their own
    mixed = {0: [Box("kart", 90, 90, 99, 99)], 1: fixed[1], 2: fixed[2], 3: follow[3], 4: follow[4]}
    got = image_dependence(truths, mixed)
    assert got["centre_pairs"] == 4 and got["distinct_boxes"] == pytest.approx(3 / 5)
