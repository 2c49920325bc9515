"""Training pipeline and padding efficiency, measured in one run on the same tiny model.

(1) pipeline efficiency = samples/s of the real path (images read from disk by the DataLoader,
    family collator, length grouping, training step, all inside worker.training.train) ÷ samples/s
    of the bare step (same LoRA model, optimizer, loss and batches, pre-built as tensors).
(2) padding efficiency = real tokens ÷ tokens processed over one epoch of a mixed detection + VQA
    set with variable lengths, with length grouping and with random batching.

    python bench/bench_training.py [--family paligemma] [--batch-size 16] [--steps 80] [--workers 1] [--rounds 5]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from worker.families import get_family  # noqa: E402
from worker.synth import shape_samples  # noqa: E402
from worker.tiny import build_tiny  # noqa: E402
from worker.train_config import TrainConfig  # noqa: E402
from worker.training import (build_model, compute_dtype, epoch_batches, sample_length, token_loss,  # noqa: E402
                             train)
from worker.types import Sample  # noqa: E402


def on_disk(samples: list[Sample], folder: Path) -> list[Sample]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for s in samples:
        p = folder / f"{s.image_id}.png"
        s.image.save(p)
        out.append(Sample(image=p, task=s.task, classes=s.classes, boxes=s.boxes, question=s.question,
                          answer=s.answer, image_id=s.image_id))
    return out


def vqa(samples: list[Sample]) -> list[Sample]:
    """VQA samples whose answers list 0..n boxes: lengths vary like real mixed data."""
    out = []
    for s in samples:
        refs = " and ".join(f"{{box{i}}}" for i in range(len(s.boxes)))
        out.append(Sample(image=s.image, task="vqa", question=f"where are the {s.boxes[0].label} objects ?",
                          answer=refs, boxes=s.boxes, image_id=f"q{s.image_id}"))
    return out


def bare_throughput(family, cfg: TrainConfig, samples: list[Sample], steps: int, warmup: int) -> float:
    """Training step alone on pre-built tensors: the ceiling the real pipeline is compared with."""
    torch.manual_seed(cfg.seed)
    model, proc = build_model(family, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate)
    sizes = [s.load_image().size for s in samples]
    lengths = [sample_length(family, proc, s, sz) for s, sz in zip(samples, sizes)]
    order = epoch_batches(samples, lengths, batch_size=cfg.batch_size, seed=cfg.seed, epoch=0,
                          group_by_length=cfg.group_by_length, mega_batch_factor=cfg.mega_batch_factor)
    batches = [family.build_batch(proc, [samples[i] for i in b], train=True) for b in order]
    dtype = compute_dtype(cfg)
    model.train()
    t0, n = None, 0
    for i in range(steps):
        if i == warmup:
            t0, n = time.perf_counter(), 0
        batch = {k: v.to(dtype) if v.is_floating_point() else v for k, v in batches[i % len(batches)].items()}
        opt.zero_grad(set_to_none=True)
        s, k = token_loss(model, batch)
        (s / k).backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        n += batch["input_ids"].shape[0]
    return n / (time.perf_counter() - t0)


def real_throughput(cfg: TrainConfig, samples: list[Sample], warmup: int) -> float:
    marks: list[tuple[float, int]] = []
    train(cfg, samples, progress=lambda p: marks.append((time.perf_counter(), p.step)))
    (t0, s0), (t1, s1) = marks[warmup - 1], marks[-1]
    return (s1 - s0) * cfg.batch_size * cfg.grad_accum / (t1 - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="paligemma")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--image-size", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    fam = get_family(a.family)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_path = build_tiny(a.family, tmp / "model")
        base = dict(family=a.family, base_model=str(model_path), batch_size=a.batch_size, rank=8, alpha=16,
                    dropout=0.05, learning_rate=1e-4, seed=0, group_by_length=True)

        # (1) pipeline efficiency: images on disk, a dataset a whole number of batches long.
        n = a.batch_size * a.steps
        det = shape_samples(n, seed=0, size=(a.image_size, a.image_size), n_objects=(1, 4), min_frac=0.1,
                            max_frac=0.3)
        files = on_disk(det, tmp / "images")
        cfg = TrainConfig(**base, output_dir=str(tmp / "real"), max_steps=a.steps, num_workers=a.workers)
        # Alternate the two measurements a few times: on a shared machine the load drifts, and the
        # median of per-round ratios compares the two under the same conditions.
        ratios, bares, reals = [], [], []
        for _ in range(a.rounds):
            bares.append(bare_throughput(fam, cfg, files, a.steps, a.warmup))
            reals.append(real_throughput(cfg, files, a.warmup))
            ratios.append(reals[-1] / bares[-1])
        med = sorted(ratios)[len(ratios) // 2]
        print(f"pipeline: real loader+collator+step {', '.join(f'{r:.1f}' for r in reals)} samples/s, bare step on "
              f"pre-built tensors {', '.join(f'{b:.1f}' for b in bares)} samples/s -> efficiency per round "
              f"{', '.join(f'{r:.3f}' for r in ratios)}, median {med:.3f} (target >= 0.95; workers={a.workers}, "
              f"batch {a.batch_size}, {a.threads} torch thread(s))")

        # (2) padding efficiency: mixed detection (1-8 objects) + VQA (1-8 boxes in the answer).
        mixed = shape_samples(256, seed=1, size=(96, 96), n_objects=(1, 8), min_frac=0.08, max_frac=0.2)
        mixed = mixed + vqa(shape_samples(256, seed=2, size=(96, 96), n_objects=(1, 8), min_frac=0.08,
                                          max_frac=0.2, id_offset=1000))
        eff = {}
        for grouped in (True, False):
            c = TrainConfig(**{**base, "group_by_length": grouped}, output_dir=str(tmp / f"pad{grouped}"), epochs=1)
            r = train(c, mixed, progress=lambda p: None)
            eff[grouped] = r.padding_efficiency
        print(f"padding: real tokens / processed tokens = {eff[True]:.3f} with length grouping "
              f"(target >= 0.90), {eff[False]:.3f} with random batching ({len(mixed)} mixed detect+VQA samples, "
              f"batch {a.batch_size})")


if __name__ == "__main__":
    main()
