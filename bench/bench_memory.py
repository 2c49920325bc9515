"""Peak memory of one training step and one evaluation batch: the new path against the old one,
on tiny models of each family given their real vocabulary sizes, with ~1,000-token sequences; and
the pre-flight estimate (worker.estimate) against the measured peak.

Measured on the CPU by counting tensor storages: a TorchDispatchMode sees every tensor an op
creates, weak references tell when they are freed, so `peak` = the most bytes alive at once (plus
the model's own weights). Old path = the code before issue 10: full-vocabulary logits at every
position, their fp32 copy for the loss; generation returning every step's logits.

    python bench/bench_memory.py [--families paligemma,qwen2_vl,qwen2_5_vl,smolvlm] [--seq 1000]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from worker.estimate import GB, estimate  # noqa: E402
from worker.families import get_family  # noqa: E402
from worker.inference import ChosenLogProb, generation_kwargs  # noqa: E402
from worker.tiny import CLASS_WORDS, build_tiny  # noqa: E402
from worker.train_config import TrainConfig  # noqa: E402
from worker.training import LocationTargets, build_model, token_loss  # noqa: E402
from worker.types import Box, Sample  # noqa: E402

REAL_VOCAB = {"paligemma": 257_216, "qwen2_vl": 151_936, "qwen2_5_vl": 151_936, "smolvlm": 49_280}


class PeakMemory(TorchDispatchMode):
    """Bytes of tensor storages alive, created inside the `with` block; `peak` its maximum."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.cur = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for k in [k for k, (ref, _) in self.live.items() if ref.expired()]:
            self.cur -= self.live.pop(k)[1]
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                st = t.untyped_storage()
                ref = StorageWeakRef(st)
                if ref.cdata not in self.live:
                    self.live[ref.cdata] = (ref, st.nbytes())
                    self.cur += st.nbytes()
        self.peak = max(self.peak, self.cur)
        return out


def model_bytes(model) -> int:
    seen, n = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        st = t.untyped_storage()
        if st.data_ptr() not in seen:
            seen.add(st.data_ptr())
            n += st.nbytes()
    return n


def real_vocab_model(family: str, root: Path) -> Path:
    """The tiny model of `family` with its LM's vocabulary grown to the real size (embeddings and
    head random; the tokenizer keeps its few hundred tokens, the head is what costs memory)."""
    import transformers

    out = root / f"{family}-real-vocab"
    tiny = build_tiny(family, root / family)
    cfg = transformers.AutoConfig.from_pretrained(tiny)
    cfg.get_text_config().vocab_size = REAL_VOCAB[family]
    if hasattr(cfg, "vocab_size") and family == "paligemma":
        cfg.vocab_size = REAL_VOCAB[family]
    model = get_family(family).get_model_class().from_pretrained(tiny, config=cfg, ignore_mismatched_sizes=True)
    model.save_pretrained(out)
    for f in tiny.iterdir():  # processor / tokenizer files
        if not (out / f.name).exists():
            shutil.copy(f, out / f.name)
    return out


def long_sample(n_objects: int, n_classes: int) -> Sample:
    """A detection sample whose prompt lists many classes (a long prefix, like the ~1,000 image
    tokens of a real image) and whose answer has n_objects boxes."""
    from PIL import Image

    classes = [f"{CLASS_WORDS[i % len(CLASS_WORDS)]}" for i in range(n_classes)]
    boxes = [Box(classes[i % 4], 2 + i, 3 + i, 60 - i % 7, 44 - i % 5) for i in range(n_objects)]
    return Sample(image=Image.new("RGB", (64, 48), (90, 120, 30)), task="detect", classes=classes, boxes=boxes)


def old_token_loss(model, batch):
    """token_loss before issue 10 (full logits, an fp32 copy of all of them)."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits
    labels = batch["labels"]
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    total = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)),
                                              shift_labels.reshape(-1), ignore_index=-100, reduction="sum")
    return total, int((shift_labels != -100).sum())


def step_peak(model, batch, loss_fn) -> int:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    with PeakMemory() as pm:
        s, k = loss_fn(model, batch)
        (s / max(k, 1)).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        del s
    del opt
    return pm.peak


@torch.no_grad()
def eval_peak(model, batch, new_tokens: int, old: bool) -> int:
    kw = generation_kwargs(model, new_tokens) | {"min_new_tokens": new_tokens}
    with PeakMemory() as pm:
        if old:
            out = model.generate(**batch, **{**kw, "return_dict_in_generate": True, "output_logits": True})
            gen = out.sequences[:, batch["input_ids"].shape[1]:]
            logits = torch.stack(out.logits, dim=1).float()
            lp = torch.log_softmax(logits, -1).gather(-1, gen[:, :logits.shape[1], None])
            del out, logits, lp
        else:
            rec = ChosenLogProb()
            from transformers import LogitsProcessorList

            model.generate(**batch, **kw, logits_processor=LogitsProcessorList([rec]))
            rec.logprobs()
    return pm.peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="paligemma,qwen2_vl,qwen2_5_vl,smolvlm")
    ap.add_argument("--seq", type=int, default=1000, help="training sequence length to aim for")
    ap.add_argument("--objects", type=int, default=4, help="boxes in the answer")
    ap.add_argument("--eval-batch", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=48)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.families.split(","):
            fam = get_family(name)
            path = real_vocab_model(name, Path(tmp))
            cfg = TrainConfig(family=name, base_model=str(path), output_dir=str(Path(tmp) / "out"), batch_size=1,
                              compute_dtype="float32", gradient_checkpointing=False, dropout=0.05)
            model, proc = build_model(fam, cfg)
            model.train()
            # grow the class list until the sequence reaches the target length
            n_classes = 8
            while True:
                s = long_sample(a.objects, n_classes)
                batch = fam.build_batch(proc, [s], train=True)
                if batch["input_ids"].shape[1] >= a.seq or n_classes > 4000:
                    break
                n_classes = int(n_classes * max(1.1, a.seq / batch["input_ids"].shape[1]))
            seq = batch["input_ids"].shape[1]
            answer = int((batch["labels"] != -100).sum())
            weights = model_bytes(model)
            old = weights + step_peak(model, batch, old_token_loss)
            new = weights + step_peak(model, batch, token_loss)
            soft_text = ""
            if fam.location_tokens():  # TrainConfig.loc_sigma: soft targets cost what plain cross-entropy does
                soft = LocationTargets(proc.tokenizer.convert_tokens_to_ids(fam.location_tokens()), 6.0)
                soft_peak = weights + step_peak(model, batch, lambda m, b: token_loss(m, b, soft))
                soft_text = f"; loc_sigma 6 step {soft_peak / 2**20:6.1f} MB = {soft_peak / new:4.2f}x plain"
            ebatch = fam.build_batch(proc, [s] * a.eval_batch, train=False)
            model.eval()
            e_old = weights + eval_peak(model, ebatch, a.new_tokens, old=True)
            e_new = weights + eval_peak(model, ebatch, a.new_tokens, old=False)
            image = {"paligemma": (64, 48)}.get(name, (64, 48))
            lm_img, _ = __import__("worker.estimate", fromlist=["image_tokens"]).image_tokens(
                fam, model.config, *image, proc.image_processor.size.get("longest_edge")
                if name.startswith("qwen") else None)
            est = estimate(fam, model.config, model=model.get_base_model(), method="lora", compute_dtype="float32",
                           device="cpu", batch_size=1, rank=cfg.rank, gradient_checkpointing=False,
                           max_pixels=proc.image_processor.size.get("longest_edge") if name.startswith("qwen") else None,
                           image_size=image, text_tokens=seq - answer - lm_img, answer_tokens=answer)
            est_step = est["parts"]["train_step"] * GB
            rows.append((name, seq, answer, old, new, e_old, e_new, est_step))
            print(f"{name:11s} vocab {REAL_VOCAB[name]:>7,} seq {seq} answer {answer}: "
                  f"step old {old / 2**20:7.1f} MB new {new / 2**20:6.1f} MB -> {old / new:5.1f}x less; "
                  f"eval (batch {a.eval_batch}, {a.new_tokens} new tokens) old {e_old / 2**20:7.1f} MB "
                  f"new {e_new / 2**20:6.1f} MB -> {e_old / e_new:4.1f}x less; "
                  f"estimate {est_step / 2**20:6.1f} MB = {est_step / new:4.2f} x measured{soft_text}", flush=True)
            del model
    worst = min(r[3] / r[4] for r in rows)
    est_ok = all(0.75 <= r[7] / r[4] <= 1.25 for r in rows)
    print(f"training step peak: new path >= {worst:.1f}x smaller than the old one on every family "
          f"(target >= 5x: {'PASS' if worst >= 5 else 'FAIL'})")
    print(f"estimate / measured: {', '.join(f'{r[0]} {r[7] / r[4]:.2f}' for r in rows)} "
          f"(target 0.75-1.25: {'PASS' if est_ok else 'FAIL'})")


if __name__ == "__main__":
    main()
