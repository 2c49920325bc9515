"""Evaluation metrics of the ML core: COCO detection metrics from a library, P/R/F1@50 with greedy
matching, vectorised IoU, VQA accuracy.

COCO numbers come from faster-coco-eval (the C++ port of pycocotools' evaluate/accumulate) by
default, or pycocotools itself with ``backend="pycocotools"``; tests and bench/bench_metrics.py check
that both give pycocotools' numbers to 1e-9. Both are fed the same hand-built COCO dicts, never
``loadRes`` (it crashes on an empty prediction list).

Label matching: labels are compared after ``normalize_label`` (lowercase, collapsed whitespace).
Categories are the ground-truth labels (plus ``classes`` if given), ids 1..K in sorted order;
every predicted label outside them maps to one extra category ``UNKNOWN`` that has no ground truth.
pycocotools skips categories without ground truth when it averages AP (``npig == 0``), so unknown
labels do not move mAP — exactly as a prediction of an absent class does in COCO. They are
counted as false positives in precision / recall / F1 and reported in ``unknown_predictions``.

Definitions of the matching metrics (``match_metrics``; seed 002's definitions):
- Per image, predictions are sorted by score, highest first (stable; a missing score counts as 1.0).
  Each prediction takes the not-yet-matched ground-truth box *of the same normalised label* with
  the highest IoU; if that IoU >= ``iou_thr`` (0.5) it is a true positive (TP) and the GT box is
  used up, else a false positive (FP). GT boxes left unmatched are false negatives (FN).
- precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R); a 0/0 gives 0.0
  for the dataset and each class.
- mean IoU = mean IoU of the TP pairs (None when there is no TP); per class the same over that
  class's TP pairs.
- wrong_label: an FP whose box overlaps some GT box of *another* label with IoU >= iou_thr
  (a subset of FP, counted in FP too).
- per image: tp, fp, fn, wrong_label, mean_iou, f1 = 2TP / (2TP + FP + FN), where an image with
  no GT and no prediction has f1 = 1.0 (nothing to find, nothing invented), so the gallery can
  sort images by the change of f1 (or errors = fp + fn) between two runs.
"""
from __future__ import annotations

import contextlib
import io
import re
import string
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from worker.codecs import norm_label as normalize_label  # the decoders' label matching, the same rule
from worker.types import Box, Prediction

UNKNOWN = "__unknown__"
IOU_THR = 0.5
Backend = Literal["faster_coco_eval", "pycocotools"]

# Order of pycocotools' COCOeval.stats for bbox.
COCO_STAT_NAMES = (
    "map", "ap50", "ap75", "ap_small", "ap_medium", "ap_large",
    "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large",
)


@dataclass(frozen=True)
class ImageTruth:
    """Ground truth of one image: its id, size in pixels, and boxes (absolute pixels)."""

    image_id: int | str
    width: int
    height: int
    boxes: Sequence[Box] = field(default_factory=tuple)


PredictionsIn = Mapping[int | str, Sequence[Box]] | Iterable[Prediction]


# --- IoU ---------------------------------------------------------------------------------------

def boxes_array(boxes: Sequence[Box]) -> np.ndarray:
    """(N, 4) float64 array of x1 y1 x2 y2."""
    return np.array([(b.x1, b.y1, b.x2, b.y2) for b in boxes], dtype=np.float64).reshape(-1, 4)


def box_area(a: np.ndarray) -> np.ndarray:
    """Area of (N, 4) xyxy boxes; inverted boxes have area 0."""
    return np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4); 0 where the union is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


# --- inputs ------------------------------------------------------------------------------------

def box_score(b: Box) -> float:
    """A box's score for ranking; a box without one (ground truth, a human's) counts as certain."""
    return 1.0 if b.score is None else float(b.score)


def _truths(gts: Iterable[ImageTruth | tuple]) -> list[ImageTruth]:
    out = [g if isinstance(g, ImageTruth) else ImageTruth(*g) for g in gts]
    ids = [g.image_id for g in out]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate image ids in the ground truth")
    return out


def _predictions(preds: PredictionsIn, known_ids: set) -> dict[int | str, list[Box]]:
    """Predictions as {image_id: boxes}; a Prediction list may hold several entries per image."""
    if isinstance(preds, Mapping):
        out = {k: list(v) for k, v in preds.items()}
    else:
        out = defaultdict(list)
        for p in preds:
            out[p.image_id].extend(p.boxes)
    unknown = set(out) - known_ids
    if unknown:
        raise ValueError(f"predictions for image ids missing from the ground truth: {sorted(map(str, unknown))[:10]}")
    return dict(out)


def _categories(truths: list[ImageTruth], classes: Iterable[str] | None) -> dict[str, int]:
    names = {normalize_label(b.label) for g in truths for b in g.boxes}
    names |= {normalize_label(c) for c in classes or ()}
    names.discard(UNKNOWN)
    cats = {n: i for i, n in enumerate(sorted(names), start=1)}
    cats[UNKNOWN] = len(cats) + 1  # never in the GT: where unknown predicted labels go
    return cats


def _xywh(b: Box) -> list[float]:
    w, h = b.x2 - b.x1, b.y2 - b.y1  # an inverted box becomes an empty one
    return [b.x1, b.y1, w if w > 0 else 0.0, h if h > 0 else 0.0]


def coco_dicts(truths: list[ImageTruth], preds: dict, cats: dict[str, int]) -> tuple[dict, list[dict]]:
    """COCO ground-truth dataset and detection list, with the fields COCOeval reads
    (``area`` for the size ranges, ``iscrowd`` = 0, integer image ids 1..N in input order)."""
    images, anns, dets = [], [], []
    for img_id, g in enumerate(truths, start=1):
        images.append({"id": img_id, "width": g.width, "height": g.height})
        for b in g.boxes:
            xywh = _xywh(b)
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cats[normalize_label(b.label)],
                         "bbox": xywh, "area": xywh[2] * xywh[3], "iscrowd": 0})
        for b in preds.get(g.image_id, ()):
            xywh = _xywh(b)
            dets.append({"id": len(dets) + 1, "image_id": img_id,
                         "category_id": cats.get(normalize_label(b.label), cats[UNKNOWN]),
                         "bbox": xywh, "area": xywh[2] * xywh[3], "iscrowd": 0, "score": box_score(b)})
    categories = [{"id": i, "name": n} for n, i in cats.items()]
    return {"images": images, "annotations": anns, "categories": categories}, dets


# --- COCO --------------------------------------------------------------------------------------

def _run_cocoeval(gt: dict, dets: list[dict], backend: Backend):
    """Evaluate with the chosen library; returns the COCOeval object after summarize()."""
    if backend == "faster_coco_eval":
        from faster_coco_eval import COCO, COCOeval_faster as Eval
        kw = {"print_function": lambda *a, **k: None}
    elif backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Eval
        kw = {}
    else:
        raise ValueError(f"unknown COCO backend {backend!r}")
    with contextlib.redirect_stdout(io.StringIO()):  # both print progress tables
        coco_gt, coco_dt = COCO(), COCO()
        coco_gt.dataset, coco_dt.dataset = gt, {"images": gt["images"], "categories": gt["categories"],
                                                 "annotations": dets}
        coco_gt.createIndex()
        coco_dt.createIndex()
        ev = Eval(coco_gt, coco_dt, "bbox", **kw)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _mean_valid(x: np.ndarray) -> float | None:
    """COCO's average over entries > -1 (-1 = no GT); None when nothing is valid."""
    v = x[x > -1]
    return float(v.mean()) if v.size else None


def coco_metrics(gts: Iterable[ImageTruth | tuple], preds: PredictionsIn, *,
                 classes: Iterable[str] | None = None, backend: Backend = "faster_coco_eval") -> dict:
    """COCO bbox metrics: map (AP@[.5:.95]), ap50, ap75, ap_small/medium/large, ar1/10/100,
    ar_small/medium/large, and per_class {label: {ap, ap50}} for every class with ground truth.
    A value is None where COCO has nothing to average (e.g. no GT at all, no small GT boxes)."""
    truths = _truths(gts)
    pred_map = _predictions(preds, {g.image_id for g in truths})
    cats = _categories(truths, classes)
    return _coco(truths, pred_map, cats, backend)


def _coco(truths: list[ImageTruth], pred_map: dict, cats: dict[str, int], backend: Backend) -> dict:
    gt, dets = coco_dicts(truths, pred_map, cats)
    out: dict = {"backend": backend}
    if not gt["annotations"]:
        # COCOeval has nothing to average: every stat would be -1.
        out.update({k: None for k in COCO_STAT_NAMES})
        out["per_class"] = {n: {"ap": None, "ap50": None} for n in cats if n != UNKNOWN}
        return out
    ev = _run_cocoeval(gt, dets, backend)
    stats = np.asarray(ev.stats[: len(COCO_STAT_NAMES)], dtype=np.float64)
    out.update({k: (float(v) if v > -1 else None) for k, v in zip(COCO_STAT_NAMES, stats)})
    # precision: [iouThr, recThr, category, areaRng(all first), maxDets(100 last)]
    prec = np.asarray(ev.eval["precision"])
    cat_ids = list(ev.params.catIds)
    out["per_class"] = {}
    for name, cid in cats.items():
        if name == UNKNOWN:
            continue
        k = cat_ids.index(cid)
        out["per_class"][name] = {"ap": _mean_valid(prec[:, :, k, 0, -1]), "ap50": _mean_valid(prec[0, :, k, 0, -1])}
    return out


# --- greedy matching: P / R / F1 / IoU -----------------------------------------------------------

def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def _prf(tp: int, fp: int, fn: int) -> dict:
    p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {"precision": p, "recall": r, "f1": _ratio(2 * p * r, p + r)}


def match_image(gt: Sequence[Box], pred: Sequence[Box], iou_thr: float = IOU_THR) -> dict:
    """Greedy one-to-one matching of one image (definitions in the module docstring).

    Returns tp, fp, fn, wrong_label, tp_ious [(label, IoU)], fp_labels and fn_labels (for the aggregates)."""
    g_lab = np.array([normalize_label(b.label) for b in gt], dtype=object)
    order = sorted(range(len(pred)), key=lambda i: -box_score(pred[i]))  # stable: ties keep input order
    p_sorted = [pred[i] for i in order]
    p_lab = [normalize_label(b.label) for b in p_sorted]
    ious = iou_matrix(boxes_array(p_sorted), boxes_array(gt))  # (P, G)
    same = np.array(p_lab, dtype=object).reshape(-1, 1) == g_lab.reshape(1, -1)  # (P, G) label match
    free = np.ones(len(gt), dtype=bool)
    tp_ious: list[tuple[str, float]] = []
    fp_labels: list[str] = []
    wrong = 0
    for i, lab in enumerate(p_lab):
        if len(gt):
            cand = np.where(same[i] & free, ious[i], -1.0)
            j = int(cand.argmax())
            if cand[j] >= iou_thr:
                free[j] = False
                tp_ious.append((lab, float(cand[j])))
                continue
            wrong += bool(np.any((~same[i]) & (ious[i] >= iou_thr)))
        fp_labels.append(lab)
    return {"tp": len(tp_ious), "fp": len(fp_labels), "fn": int(free.sum()), "wrong_label": wrong,
            "tp_ious": tp_ious, "fp_labels": fp_labels, "fn_labels": list(g_lab[free])}


def match_metrics(gts: Iterable[ImageTruth | tuple], preds: PredictionsIn, *,
                  iou_thr: float = IOU_THR) -> dict:
    """Precision / recall / F1 / mean IoU at IoU >= iou_thr with class match, per class and per image."""
    truths = _truths(gts)
    return _match(truths, _predictions(preds, {g.image_id for g in truths}), iou_thr)


def _match(truths: list[ImageTruth], pred_map: dict, iou_thr: float) -> dict:
    per_image = []
    cls_tp: dict[str, list[float]] = defaultdict(list)
    cls_fp: dict[str, int] = defaultdict(int)
    cls_fn: dict[str, int] = defaultdict(int)
    gt_labels = {normalize_label(b.label) for g in truths for b in g.boxes}
    for g in truths:
        m = match_image(g.boxes, pred_map.get(g.image_id, ()), iou_thr)
        for lab, iou in m["tp_ious"]:
            cls_tp[lab].append(iou)
        for lab in m["fp_labels"]:
            cls_fp[lab] += 1
        for lab in m["fn_labels"]:
            cls_fn[lab] += 1
        ious = [iou for _, iou in m["tp_ious"]]
        denom = 2 * m["tp"] + m["fp"] + m["fn"]
        per_image.append({"image_id": g.image_id, "tp": m["tp"], "fp": m["fp"], "fn": m["fn"],
                          "wrong_label": m["wrong_label"], "mean_iou": float(np.mean(ious)) if ious else None,
                          "f1": 2 * m["tp"] / denom if denom else 1.0})
    all_ious = [i for v in cls_tp.values() for i in v]
    tp, fp, fn = len(all_ious), sum(cls_fp.values()), sum(cls_fn.values())
    per_class = {}
    for lab in sorted(gt_labels | set(cls_fp)):
        t, f, n = len(cls_tp[lab]), cls_fp[lab], cls_fn[lab]
        per_class[lab] = {"tp": t, "fp": f, "fn": n, **_prf(t, f, n), "known": lab in gt_labels,
                          "mean_iou": float(np.mean(cls_tp[lab])) if cls_tp[lab] else None}
    return {"tp": tp, "fp": fp, "fn": fn, **_prf(tp, fp, fn),
            "mean_iou": float(np.mean(all_ious)) if all_ious else None,
            "wrong_label": sum(r["wrong_label"] for r in per_image),
            "per_class": per_class, "per_image": per_image}


# --- the location prior ---------------------------------------------------------------------

def majority_answer(train: Iterable[tuple[str | None, str | None, str]],
                    evaluate: Sequence[tuple[str | None, str | None, str]]) -> dict:
    """The score of a model that never looks at the image or the question's details: per question
    template, always the train split's most common (normalised) answer; reported per question type
    (family). `train` and `evaluate` are (type, template, reference answer) triples; a None
    template stands for its type. Per template, not per family: a family such as "spatial" mixes
    left/right, in front/behind and "where" questions whose usual answers differ, and one answer
    per family ("behind" to a left/right question) is a baseline a model beats by learning each
    template's usual answer without looking (the demo's held-out spatial questions: 0.346 per
    family, 0.692 per template). A template the train split never asked takes its type's most
    common answer (None when the type was never asked either: always wrong).

    Returns vqa_accuracy's shape ({accuracy, correct, n, per_type}); each type also has `answers`
    {template: the answer given}."""
    def key(q: str | None, t: str | None) -> tuple[str, str]:
        return q or "other", t or q or "other"

    by_template: dict[tuple[str, str], Counter] = defaultdict(Counter)
    by_type: dict[str, Counter] = defaultdict(Counter)
    for q, t, a in train:
        k, norm = key(q, t), normalize_answer(a)
        by_template[k][norm] += 1
        by_type[k[0]][norm] += 1

    def common(c: Counter) -> str | None:  # most common first, ties broken by the text: deterministic
        return min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] if c else None

    evaluate = list(evaluate)
    keys = [key(q, t) for q, t, _ in evaluate]
    # each template's answer once: its own when the train split asked it, else its type's
    given = {k: common(by_template[k] if k in by_template else by_type.get(k[0], Counter()))
             for k in dict.fromkeys(keys)}  # first-seen order: the stored metrics read the same every run
    out = vqa_accuracy([given[k] for k in keys], [r for _, _, r in evaluate], [q for q, _, _ in evaluate])
    for q, v in out["per_type"].items():
        v["answers"] = {t: a for (q2, t), a in given.items() if q2 == q}
    return out


def location_prior(train: Iterable[ImageTruth | tuple], evaluate: Iterable[ImageTruth | tuple], *,
                   iou_thr: float = IOU_THR) -> dict:
    """The score of a model that never looks at the image: on every evaluated image, one box per
    training label at that label's median box (x1, y1, x2, y2 as fractions of the image size) over
    the training images. Where objects sit in nearly the same place in every frame (a camera
    behind a kart) this is high, and a fine-tuned model has to beat it to show it sees anything.
    Returns detection_metrics(...) plus `boxes` {label: [x1, y1, x2, y2] fractions}."""
    by_label: dict[str, list[list[float]]] = defaultdict(list)
    for t in _truths(train):
        for b in t.boxes:
            by_label[b.label].append([b.x1 / t.width, b.y1 / t.height, b.x2 / t.width, b.y2 / t.height])
    med = {lab: np.median(np.asarray(v), axis=0).tolist() for lab, v in sorted(by_label.items())}
    truths = _truths(evaluate)
    preds = {t.image_id: [Box(lab, f[0] * t.width, f[1] * t.height, f[2] * t.width, f[3] * t.height, score=1.0)
                          for lab, f in med.items()] for t in truths}
    return {**detection_metrics(truths, preds, iou_thr=iou_thr), "boxes": med}


def image_dependence(gts: Iterable[ImageTruth | tuple], preds: PredictionsIn) -> dict:
    """Does a model look at the image, or answer where objects usually are? `distinct_boxes`: the
    share of images whose predicted boxes (rounded to a pixel) differ from every other image's;
    `centre_r_x` / `centre_r_y`: Pearson r between each true box's centre and the centre of the
    predicted box overlapping it most, as fractions of the image's width and height (true boxes no
    prediction touches are left out; None when fewer than 3 pairs or no spread); `centre_pairs`:
    how many pairs. A fixed box on every frame scores distinct 0 and r about 0. Part of
    detection_metrics."""
    truths = _truths(gts)
    return _dependence(truths, _predictions(preds, {g.image_id for g in truths}))


def _dependence(truths: list[ImageTruth], pred_map: dict) -> dict:
    keys = [tuple((round(b.x1), round(b.y1), round(b.x2), round(b.y2)) for b in pred_map.get(t.image_id, []))
            for t in truths]
    seen = Counter(keys)
    pairs = []
    for t in truths:
        ps = pred_map.get(t.image_id, [])
        if not ps or not t.boxes:
            continue
        ious = iou_matrix(boxes_array(t.boxes), boxes_array(ps))  # (G, P)
        for g, row in zip(t.boxes, ious):
            if row.max() > 0:
                p = ps[int(row.argmax())]
                w, h = t.width or 1, t.height or 1  # fractions of the frame: sizes may differ
                pairs.append(((g.x1 + g.x2) / 2 / w, (g.y1 + g.y2) / 2 / h,
                              (p.x1 + p.x2) / 2 / w, (p.y1 + p.y2) / 2 / h))
    a = np.asarray(pairs, dtype=float).reshape(-1, 4)

    def r(i: int, j: int) -> float | None:
        if len(a) < 3 or a[:, i].std() == 0 or a[:, j].std() == 0:
            return None
        return float(np.corrcoef(a[:, i], a[:, j])[0, 1])

    return {"distinct_boxes": sum(seen[k] == 1 for k in keys) / len(keys) if keys else None,
            "centre_r_x": r(0, 2), "centre_r_y": r(1, 3), "centre_pairs": len(a)}


# --- both --------------------------------------------------------------------------------------

def detection_metrics(gts: Iterable[ImageTruth | tuple], preds: PredictionsIn, *,
                      classes: Iterable[str] | None = None, iou_thr: float = IOU_THR,
                      backend: Backend = "faster_coco_eval") -> dict:
    """COCO metrics + matching metrics in one dict (JSON-ready).

    Top level: map, ap50, ap75, ap_small, ap_medium, ap_large, ar1, ar10, ar100, ar_small,
    ar_medium, ar_large, precision, recall, f1, mean_iou, tp, fp, fn, wrong_label, n_images, n_gt,
    n_pred, unknown_predictions, backend, warnings (list of str), per_class {label: {ap, ap50,
    precision, recall, f1, mean_iou, tp, fp, fn, known}}, per_image [{image_id, tp, fp, fn,
    wrong_label, mean_iou, f1}] in ground-truth order, and image_dependence's distinct_boxes,
    centre_r_x, centre_r_y, centre_pairs."""
    truths = _truths(gts)
    pred_map = _predictions(preds, {g.image_id for g in truths})
    cats = _categories(truths, classes)
    all_preds = [b for bs in pred_map.values() for b in bs]
    warnings = []
    n_none = sum(b.score is None for b in all_preds)
    if n_none:
        warnings.append(f"{n_none} of {len(all_preds)} predicted boxes have no score; scored 1.0, "
                        "so AP ranks them as one operating point")
    n_unknown = sum(cats.get(normalize_label(b.label), cats[UNKNOWN]) == cats[UNKNOWN] for b in all_preds)
    if n_unknown:
        warnings.append(f"{n_unknown} predicted boxes have labels outside the ground-truth classes: "
                        "false positives in precision/recall/F1, not in COCO AP (no GT for them)")
    coco = _coco(truths, pred_map, cats, backend)
    match = _match(truths, pred_map, iou_thr)
    per_class = {lab: dict(v) for lab, v in match["per_class"].items()}
    for lab, v in coco["per_class"].items():
        per_class.setdefault(lab, {"tp": 0, "fp": 0, "fn": 0, **_prf(0, 0, 0), "known": True, "mean_iou": None})
        per_class[lab].update(v)
    for v in per_class.values():
        v.setdefault("ap", None)
        v.setdefault("ap50", None)
    return {**{k: coco[k] for k in COCO_STAT_NAMES},
            **{k: match[k] for k in ("precision", "recall", "f1", "mean_iou", "tp", "fp", "fn", "wrong_label")},
            "n_images": len(truths), "n_gt": sum(len(g.boxes) for g in truths), "n_pred": len(all_preds),
            "unknown_predictions": n_unknown, "backend": backend, "warnings": warnings,
            **_dependence(truths, pred_map),
            "per_class": per_class, "per_image": match["per_image"]}


# --- VQA ---------------------------------------------------------------------------------------

_NUMBERS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
_ARTICLES = {"a", "an", "the"}
_TRAILING_PUNCT = re.compile(f"[{re.escape(string.punctuation)}\\s]+$")


def normalize_answer(text: str | None) -> str:
    """Lowercase, strip, drop trailing punctuation, drop the articles a/an/the, map number words
    zero..twenty to digits, collapse whitespace: "The  Two." -> "2"."""
    if text is None:
        return ""
    t = _TRAILING_PUNCT.sub("", str(text).lower().strip())
    return " ".join(_NUMBERS.get(w, w) for w in t.split() if w not in _ARTICLES)


def vqa_accuracy(predictions: Sequence[str | None], references: Sequence[str],
                 qtypes: Sequence[str | None] | None = None) -> dict:
    """Normalised exact-match accuracy overall and per question type.

    Returns {accuracy, correct, n, per_type: {qtype: {accuracy, correct, n}}}; a missing
    prediction (None) is wrong; a missing qtype is grouped as "other"; accuracy of 0 questions is None."""
    if len(predictions) != len(references) or (qtypes is not None and len(qtypes) != len(references)):
        raise ValueError("predictions, references and qtypes must have the same length")
    qtypes = qtypes if qtypes is not None else [None] * len(references)
    by_type: dict[str, list[bool]] = defaultdict(list)
    hits = []
    for p, r, q in zip(predictions, references, qtypes):
        ok = p is not None and normalize_answer(p) == normalize_answer(r)
        hits.append(ok)
        by_type[q or "other"].append(ok)

    def acc(v: list[bool]) -> dict:
        return {"accuracy": sum(v) / len(v) if v else None, "correct": sum(v), "n": len(v)}

    return {**acc(hits), "per_type": {q: acc(v) for q, v in sorted(by_type.items())}}
