"""The real learning check: a tiny PaliGemma learns to detect shapes, end to end.

Everything is the production path: worker.synth images -> the family's codec and label masking
(build_batch) -> worker.training.train (LoRA) -> worker.inference.predict (batched greedy
generation, decoding, per-box scores) -> worker.metrics (COCO AP50 via the COCO library).

Choices that make it learnable on 2 CPU threads within the budget, and why:
- The tiny model is randomly initialised, so the "LoRA" is a full-strength one: rank 32 adapters on
  every Linear of all three parts (vision tower, projector, language model; hidden size is 64, so
  rank 32 is nearly full rank), plus the LM head trained whole (`modules_to_save`). The head has
  to be trainable: the language model's output passes a final RMSNorm and is scored against the
  frozen, tiny (std 0.02) random embeddings, so with adapters alone the logits stay within about
  ±1.3 and the loss cannot drop below ~6 even when the argmax is right.
- 56×56 images (the tiny model's input size), one object per image, two classes that differ in
  colour and shape, objects 50-80 % of the side, corners snapped to a 7-pixel grid (half a patch:
  8 positions per side instead of 56, so each target token is seen often enough).
  Measured while tuning (600 steps, batch 16, lr 3e-3 cosine): 2 classes, grid 7 -> AP50 1.0;
  grid 1 (free positions) -> 0.45; 3 classes grid 7 -> 0.46; 300 steps grid 7 -> 0.25; about 40-70 s.
"""
from __future__ import annotations

import time

import pytest
import torch

from worker.families import get_family
from worker.inference import predict
from worker.metrics import ImageTruth, detection_metrics
from worker.synth import DEFAULT_CLASSES, shape_samples
from worker.train_config import TrainConfig
from worker.training import load_with_adapter, train

ALL_PARTS = ["q_proj", "k_proj", "v_proj", "o_proj", "out_proj", "gate_proj", "up_proj", "down_proj",
             "fc1", "fc2", "linear"]
SIZE = (56, 56)
DATA = dict(size=SIZE, classes=DEFAULT_CLASSES[:2], min_frac=0.5, max_frac=0.8, grid=7)


def evaluate(model, processor, family, samples) -> dict:
    preds = predict(model, processor, family, samples, batch_size=16, max_new_tokens=12)
    truths = [ImageTruth(s.image_id, *SIZE, s.boxes) for s in samples]
    return detection_metrics(truths, preds, classes=[c.label for c in DEFAULT_CLASSES[:2]])


def run_learning_check(model_path, out_dir, *, steps=600, lr=3e-3, n_train=2000, n_test=64, batch_size=16,
                       threads=2, data=None, seed=0, **cfg_kw) -> dict:
    torch.set_num_threads(threads)
    data = data or DATA
    family = get_family("paligemma")
    train_set = shape_samples(n_train, seed=1 + seed, **data)
    test_set = shape_samples(n_test, seed=2, id_offset=100_000, **data)
    t0 = time.perf_counter()
    base, processor = family.load(str(model_path))
    before = evaluate(base, processor, family, test_set)
    cfg = TrainConfig(family="paligemma", base_model=str(model_path), output_dir=str(out_dir), max_steps=steps,
                      batch_size=batch_size, learning_rate=lr, warmup_ratio=0.05, scheduler="cosine",
                      rank=32, alpha=32, dropout=0.0, target_modules=ALL_PARTS, modules_to_save=["lm_head"],
                      freeze_vision=False, freeze_projector=False, freeze_language=False, seed=seed,
                      **cfg_kw)
    result = train(cfg, train_set, progress=lambda p: None)
    model, processor, _ = load_with_adapter(result.adapter_dir)
    after = evaluate(model, processor, family, test_set)
    return {"before": before, "after": after, "seconds": time.perf_counter() - t0, "losses": result.losses}


@pytest.mark.slow
def test_tiny_paligemma_learns_to_detect_shapes(tiny_models, tmp_path):
    """Two seeds, judged on their mean: 600 steps at lr 3e-3 amplify rounding-level differences, so
    one seed's AP50 moves by ~0.2 with numerically equivalent code (seed 0 gave 0.955 with the
    full-vocabulary loss and 0.795 with the answer-positions-only loss, whose gradients agree to 1e-7;
    seed 1 gave 1.0 with both). Each seed must still learn on its own."""
    threads = torch.get_num_threads()
    runs = []
    try:
        for seed in (0, 1):
            runs.append(run_learning_check(tiny_models["paligemma"], tmp_path / f"run{seed}", seed=seed))
    finally:
        torch.set_num_threads(threads)
    for seed, r in enumerate(runs):
        before, after = r["before"], r["after"]
        print(f"seed {seed}: AP50 before {before['ap50']:.3f} after {after['ap50']:.3f}; recall@0.5 "
              f"{before['recall']:.3f} -> {after['recall']:.3f}; loss {r['losses'][0]:.3f} -> {r['losses'][-1]:.3f}; "
              f"{r['seconds']:.0f} s")
        assert (before["ap50"] or 0.0) < 0.05
        assert after["ap50"] > (before["ap50"] or 0.0) + 0.4
        assert r["losses"][-1] < r["losses"][0] / 3
    assert sum(r["after"]["ap50"] for r in runs) / len(runs) >= 0.8
    # No time assertion: the wall time is printed above (37-80 s per seed on 2 quiet threads); a
    # shared machine can make it many times slower, and speed is measured in bench/, not in tests.
