"""Batched vs one-image-at-a-time generation through worker.inference.predict (the real path:
collation, left padding, KV cache, scoring), same tiny model, same images, measured in one run.

    python bench/bench_generation.py [--family paligemma] [--images 32] [--batch-size 16]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from worker.families import get_family  # noqa: E402
from worker.inference import predict  # noqa: E402
from worker.tiny import build_tiny  # noqa: E402
from worker.types import Sample  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="paligemma")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        fam = get_family(a.family)
        model, proc = fam.load(str(build_tiny(a.family, Path(tmp) / a.family)))
    gen = torch.Generator().manual_seed(0)
    samples = [Sample(Image.fromarray(torch.randint(0, 255, (64 + 8 * (i % 4), 96, 3), generator=gen,
                                                    dtype=torch.uint8).numpy()),
                      classes=["kart", "person", "traffic light"][: 1 + i % 3], image_id=i)
               for i in range(a.images)]
    predict(model, proc, fam, samples[:2], batch_size=2, max_new_tokens=4)  # warm-up

    def timed(bs):
        t = time.perf_counter()
        preds = predict(model, proc, fam, samples, batch_size=bs, max_new_tokens=a.max_new_tokens)
        return time.perf_counter() - t, preds

    t1, single = timed(1)
    tb, batched = timed(a.batch_size)
    same = sum(p.text == q.text for p, q in zip(single, batched))
    print(f"family={a.family} images={a.images} max_new_tokens={a.max_new_tokens} threads={a.threads}")
    print(f"one at a time: {t1:.2f} s ({a.images / t1:.1f} images/s)")
    print(f"batch {a.batch_size}:      {tb:.2f} s ({a.images / tb:.1f} images/s)")
    print(f"identical outputs: {same}/{a.images}")
    print(f"speed-up: {t1 / tb:.2f}x (target >= 4x)")


if __name__ == "__main__":
    main()
