"""GPU check: each family's tiny model through the GPU path, printing peak memory and PASS/FAIL.

    python bench/gpu_check.py            # exits 0 with "no CUDA" on a machine without a GPU
    python bench/gpu_check.py --device cpu --families smolvlm   # the same flow on the CPU (a dry run)

Per family: 4-bit QLoRA training (bitsandbytes), 4-bit evaluation of base + adapter (greedy
generation, the base quantised as it trained), bf16 LoRA training (compute_dtype auto), merge (a
bf16 model that loads and generates), and the pre-flight estimate beside the measured peak.
Needs only torch, transformers (with Pillow for the image processors), peft, accelerate and
bitsandbytes: the ML core (worker/) imports nothing from the web or database layers.
Exit status: 0 when every check passes (or without CUDA), 1 otherwise.
"""
from __future__ import annotations

import math
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FAMILIES = ["paligemma", "qwen2_vl", "qwen2_5_vl", "smolvlm"]
MB = 2 ** 20


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a dry run of the flow)")
    ap.add_argument("--families", default=",".join(FAMILIES))
    a = ap.parse_args()
    dev = a.device
    if dev.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA: nothing to check (run this on a GPU machine)")
        return 0
    cuda = dev.startswith("cuda")
    from safetensors.torch import load_file

    from worker.estimate import GB, estimate_config
    from worker.families import get_family
    from worker.inference import predict
    from worker.synth import shape_samples
    from worker.tiny import build_tiny
    from worker.train_config import TrainConfig
    from worker.training import load_with_adapter, merge, train

    total_gb = torch.cuda.get_device_properties(0).total_memory / GB if cuda else 64.0
    half = ("torch.bfloat16" if torch.cuda.is_bf16_supported() else "torch.float16") if cuda else "torch.float32"
    print(f"device: {torch.cuda.get_device_name(0) + ', ' if cuda else 'cpu (dry run), '}{total_gb:.1f} GB; "
          f"torch {torch.__version__}")
    results: list[tuple[str, str, bool, str]] = []

    def check(family: str, what: str, fn) -> object:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        try:
            out, detail = fn()
            ok = True
        except Exception as e:  # noqa: BLE001 - report every failure, keep checking
            out, ok, detail = None, False, f"{type(e).__name__}: {e}"
            traceback.print_exc()
        peak = torch.cuda.max_memory_allocated() / MB if cuda else float("nan")
        line = f"{family:11s} {what:22s} {'PASS' if ok else 'FAIL'}  peak {peak:8.1f} MB  {time.perf_counter() - t0:5.1f} s  {detail}"
        print(line, flush=True)
        results.append((family, what, ok, detail))
        return out

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = shape_samples(8, seed=0, size=(64, 48), n_objects=(1, 3))
        for name in a.families.split(","):
            base = build_tiny(name, root / name)
            common = dict(family=name, base_model=str(base), max_steps=3, batch_size=2, device=dev, rank=4,
                          freeze_vision=False, learning_rate=1e-3)

            def qlora():
                cfg = TrainConfig(**common, output_dir=str(root / f"{name}-q"), method="qlora", bits=4)
                r = train(cfg, data, progress=lambda p: None)
                assert all(math.isfinite(x) for x in r.losses), r.losses
                return (cfg, r), f"losses {[round(x, 3) for x in r.losses]}, adapter {r.adapter_bytes} B"

            q = check(name, "QLoRA 4-bit train", qlora)

            def q_eval():
                import bitsandbytes as bnb

                model, proc, fam = load_with_adapter(q[1].adapter_dir, device=dev)
                n4 = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
                assert n4 > 0 or not cuda, "base not loaded in 4-bit"  # the CPU evaluates in float32
                preds = predict(model, proc, fam, data[:4], batch_size=4, max_new_tokens=24)
                return None, f"{n4} Linear4bit layers, {sum(len(p.boxes) for p in preds)} boxes decoded"

            if q is not None:
                check(name, "QLoRA 4-bit eval", q_eval)

            def lora_bf16():
                cfg = TrainConfig(**common, output_dir=str(root / f"{name}-l"))  # compute_dtype auto
                r = train(cfg, data, progress=lambda p: None)
                sd = load_file(r.adapter_dir / "adapter_model.safetensors")
                dtypes = {str(v.dtype) for v in sd.values()}
                assert dtypes == {half}, dtypes
                return (cfg, r), f"adapter {dtypes.pop()}, {r.adapter_bytes} B"

            lo = check(name, "LoRA auto-dtype train", lora_bf16)

            def merged():
                out = merge(base, lo[1].adapter_dir, root / f"{name}-merged")
                model, proc = get_family(name).load(str(out), dtype="bfloat16", device=dev)
                dt = {p.dtype for p in model.parameters()}
                preds = predict(model, proc, get_family(name), data[:2], batch_size=2, max_new_tokens=16)
                return None, f"merged params {sorted(map(str, dt))}, {len(preds)} predictions"

            if lo is not None:
                check(name, "merge", merged)

            def est():
                cfg = lo[0]
                e = estimate_config(cfg, image_size=(64, 48), device=dev, device_gb=total_gb)
                assert e["fits"], e
                return None, (f"estimate {e['estimate_gb'] * 1024:.0f} MB incl. 0.6 GB CUDA reserve; "
                              f"train step {e['parts']['train_step'] * 1024:.1f} MB, eval {e['parts']['eval'] * 1024:.1f} MB")

            if lo is not None:
                check(name, "estimate", est)
    failed = [r for r in results if not r[2]]
    print(f"{len(results) - len(failed)} of {len(results)} checks passed" + (": FAIL" if failed else ": PASS"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
