"""The demo's "pretrained" model: a tiny PaliGemma pre-trained on SYNTHETIC racing scenes, cached.

Built with the real classes (GemmaTokenizer trained locally on worker.tiny's corpus plus the QA
templates and kart names, SiglipImageProcessorPil, PaliGemmaProcessor, PaliGemmaConfig /
PaliGemmaForConditionalGeneration), a little bigger than worker.tiny's test model (karts in a
300x200 frame are 10-60 px: they need more than 56 px of input). Then every parameter is trained
on worker.synth_karts scenes that went through the SuperTuxKart importer and backend.qa (detection
+ counting + spatial questions), and saved with save_pretrained under
`<data_dir>/models/tiny-paligemma-synth-<hash of the recipe and this code>/`, so it loads like any
local model folder and later runs are free.

Why full-parameter pre-training (not LoRA): the model starts random; the later fine-tune on real
frames is the LoRA part. Why the location tokens' embeddings start as a sinusoidal code of their
bin: neighbouring bins then start close, so what the model learns about bin 300 carries to bin 310
(a random init treats every one of the 1024 bins as an unrelated word; in a few minutes most bins
are never seen often enough).
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import torch

from worker.types import Box, Sample

FAMILY = "paligemma"
PRETRAIN_FAMILIES = ["detection", "counting", "spatial"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    image_size: int = 160  # 10x10 patches of 16 px: a 20 px kart of a 300 px frame is ~1 patch
    patch: int = 16
    hidden: int = 128
    vision_layers: int = 2
    text_layers: int = 2
    vocab: int = 900
    n_images: int = 3000
    steps: int = 1200
    batch_size: int = 16
    lr: float = 2e-3
    det_repeat: int = 3  # detection samples count this many times (one per image, vs ~6 questions)
    seed: int = 0

    def key(self) -> str:
        import worker.synth_karts as sk

        src = inspect.getsource(sk) + inspect.getsource(sys.modules[__name__])
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True) + src
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def extra_corpus() -> list[str]:
    from worker.synth_karts import kart_names

    names = kart_names()
    qs = ["How many karts are in the image?", "How many objects are in the image?",
          "How many objects of each class are in the image?", "kart: 1", "kart: 2",
          "Is {n} to the left or to the right of the ego kart?", "Is {n} in front of or behind the ego kart?",
          "Where is {n} relative to the ego kart?", "in front and left", "behind and right",
          "What is the name of the ego kart?", "What is in the box", "Which track is this?",
          "detect kart", "answer en", "Detect every object of these classes: kart."]
    return [q.replace("{n}", n) for q in qs for n in names] + [" ".join(names), " ".join(names).lower()]


def build_base(out: Path, r: Recipe) -> Path:
    """Randomly initialised tiny PaliGemma at the recipe's size (real classes), saved to `out`."""
    from transformers import (GemmaTokenizer, PaliGemmaConfig, PaliGemmaForConditionalGeneration,
                              PaliGemmaProcessor)

    from worker.tiny import _pil_image_processor, _save, corpus

    torch.manual_seed(r.seed)
    tok = GemmaTokenizer().train_new_from_iterator(corpus() + extra_corpus(), vocab_size=r.vocab,
                                                   new_special_tokens=["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"])
    tok.add_bos_token, tok.add_eos_token = True, False
    ip = _pil_image_processor("SiglipImageProcessorPil", size={"height": r.image_size, "width": r.image_size})
    ip.image_seq_length = (r.image_size // r.patch) ** 2
    proc = PaliGemmaProcessor(image_processor=ip, tokenizer=tok)
    tok = proc.tokenizer
    vocab, h = len(tok), r.hidden
    cfg = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=h, intermediate_size=2 * h,
                           num_hidden_layers=r.vision_layers, num_attention_heads=4, image_size=r.image_size,
                           patch_size=r.patch, vision_use_head=False),
        text_config=dict(model_type="gemma2", hidden_size=h, intermediate_size=2 * h,
                         num_hidden_layers=r.text_layers, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=32, vocab_size=vocab, max_position_embeddings=512, sliding_window=256,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id),
        image_token_index=tok.convert_tokens_to_ids("<image>"), vocab_size=vocab, projection_dim=h,
        hidden_size=h, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id)
    model = PaliGemmaForConditionalGeneration(cfg)
    _loc_code(model, tok)
    return _save(model, proc, out, tok)


@torch.no_grad()
def _loc_code(model, tok) -> None:
    emb = model.get_input_embeddings().weight
    ids = tok.convert_tokens_to_ids([f"<loc{i:04d}>" for i in range(1024)])
    d = emb.shape[1]
    pos = torch.arange(1024, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(2000.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)[None]
    code = torch.zeros(1024, d)
    code[:, 0::2], code[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    emb[ids] = code * float(emb.std()) * 1.5


# --------------------------------------------------------------------------- synthetic data

def synthetic_samples(folder: Path, families: list[str] = PRETRAIN_FAMILIES, seed: int = 0) -> list[Sample]:
    """The frames of `folder` read by the SuperTuxKart importer, QA from backend.qa, as Samples."""
    from io import BytesIO

    from PIL import Image

    from backend.config import Settings
    from backend.formats.base import DirSource
    from backend.importer import parse
    from backend.qa import resolve_options
    from backend.qa.base import ImageView, Obj
    from backend.qa.store import generate_items
    from worker.families import get_family

    family = get_family(FAMILY)
    ds = parse("supertuxkart", DirSource(folder), Settings(data_dir=folder))
    opts = {f: resolve_options(f, None, 0.5) for f in families}
    out: list[Sample] = []
    for k, im in enumerate(ds.images):
        img = Image.open(BytesIO(im.read())).convert("RGB")
        objs = [Obj(b.label, b.x1, b.y1, b.x2, b.y2, b.attributes) for b in im.boxes]
        view = ImageView(im.file_name, im.width, im.height, im.meta, objs, ds.labels, k)
        for fam, it in generate_items(view, families, opts, seed, None):
            out.append(item_sample(family, img, k, it.template_id, it.question, it.answer, it.params()))
    return out


def item_sample(family, image, image_id, template_id: str, question: str, answer: str, params: dict) -> Sample:
    """A stored QA pair as a worker Sample: params.task == "detect" -> detection sample; `{boxN}`
    placeholders in the question and answer filled in the family's box syntax."""
    from worker.codecs import fill_answer

    boxes = [Box(b["label"], b["x1"], b["y1"], b["x2"], b["y2"]) for b in params.get("boxes", [])]
    if params.get("task") == "detect":
        return Sample(image=image, task="detect", classes=list(params.get("classes") or ["kart"]), boxes=boxes,
                      image_id=image_id)
    w, h = image.size

    def enc(bs):
        return family.encode_boxes(bs, w, h)

    return Sample(image=image, task="vqa", question=fill_answer(question, boxes, enc),
                  answer=fill_answer(answer, boxes, enc), qtype=template_id, image_id=image_id)


# --------------------------------------------------------------------------- pre-training

def pretrain(base: Path, samples: list[Sample], r: Recipe, log=print) -> tuple:
    """Full-parameter training (AdamW, warm-up + cosine) of the model in `base`; returns (model, processor, losses)."""
    from worker.families import get_family
    from worker.training import token_loss

    family = get_family(FAMILY)
    model, processor = family.load(str(base), dtype=torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=0.0)
    warm = max(1, r.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / (r.steps - warm))))
    rng = random.Random(r.seed)
    order: list[int] = []
    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(r.steps):
        if len(order) < r.batch_size:
            order += rng.sample(range(len(samples)), len(samples))
        batch = family.build_batch(processor, [samples[i] for i in order[:r.batch_size]], train=True)
        del order[:r.batch_size]
        s, k = token_loss(model, batch)
        loss = s / max(k, 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 50 == 0 or step + 1 == r.steps:
            log(f"pre-train step {step + 1}/{r.steps} loss {sum(losses[-50:]) / len(losses[-50:]):.3f} "
                f"({time.perf_counter() - t0:.0f} s)")
    model.eval()
    return model, processor, losses


def ensure_pretrained(data_dir: str | Path, r: Recipe | None = None, *, log=print) -> Path:
    """The cached pre-trained model folder (built now if missing): `<data_dir>/models/tiny-paligemma-synth-<key>/`."""
    from worker.synth_karts import write_dataset
    from worker.tiny import _save

    r = r or Recipe()
    out = Path(data_dir) / "models" / f"tiny-paligemma-synth-{r.key()}"
    if (out / "config.json").is_file():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    log(f"pre-training the tiny PaliGemma on {r.n_images} SYNTHETIC racing scenes (worker/synth_karts.py; "
        "not game frames), once; cached in " + str(out))
    write_dataset(tmp / "synthetic", r.n_images, seed=1000 + r.seed)
    samples = synthetic_samples(tmp / "synthetic", seed=r.seed)
    samples += [s for s in samples if s.task == "detect"] * (r.det_repeat - 1)
    build_base(tmp / "init", r)
    model, processor, losses = pretrain(tmp / "init", samples, r, log)
    _save(model, processor, tmp / "model", processor.tokenizer)
    (tmp / "model" / "studio_pretraining.json").write_text(json.dumps({
        "data": "SYNTHETIC racing scenes from worker/synth_karts.py (not game frames)",
        "recipe": dataclasses.asdict(r), "samples": len(samples), "families": PRETRAIN_FAMILIES,
        "loss_first": losses[0], "loss_last": sum(losses[-20:]) / len(losses[-20:]),
        "seconds": round(time.perf_counter() - t0, 1)}, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    (tmp / "model").rename(out)  # atomic: a half-trained folder is never picked up
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"pre-trained in {time.perf_counter() - t0:.0f} s -> {out}")
    return out
