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
frames is the LoRA part. What makes a from-scratch detector learn in a few CPU minutes (each one
measured on held-out synthetic frames; without them the model answered nothing at all):
- position codes at init: the location tokens' embeddings are a sinusoidal code of their bin, and
  the vision tower's patch position embeddings are the same code of the patch centre's x and y
  bins (MAE-style fixed 2-D sin/cos), passed through an identity projector. "Where is this patch"
  and "which location token" then start in one space: reading a kart's position out is linear;
- an auxiliary dense loss on the vision tower's patch tokens (how much of the patch is kart, and
  the box around it), through a small head that is thrown away: ~100 labels per image instead of
  4 location tokens, so the vision tower learns what a kart is quickly (DETR / OWL-ViT style);
- soft location targets (a Gaussian over neighbouring bins): an answer 3 bins off is nearly
  right, not as wrong as one 500 bins off;
- a canonical object order (largest first, the fine-tune's `object_order` too) and no empty
  frames: the first answer token is always a location, never "eos or any of the karts".
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
PRETRAIN_FAMILIES = ["detection"]  # QA is the fine-tune's job (the demo measures it before / after)


@dataclasses.dataclass(frozen=True)
class Recipe:
    image_size: int = 160  # 10x10 patches of 16 px: a 20 px kart of a 300 px frame is ~1 patch
    patch: int = 16
    hidden: int = 128
    vision_layers: int = 2
    text_layers: int = 2
    vocab: int = 900
    n_images: int = 3000
    steps: int = 2400  # measured: held-out synthetic AP50 0.20 at 1200, 0.29 at 2400 (hidden 256 or 128 px: worse)
    batch_size: int = 16
    lr: float = 2e-3
    aux_weight: float = 1.0  # the dense patch loss (objectness + box) next to the token loss
    loc_sigma: float = 6.0  # bins: width of the soft location targets
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
    _position_codes(model, tok, r)
    return _save(model, proc, out, tok)


def sincos(pos: torch.Tensor, d: int, min_period: float = 64.0, max_period: float = 4096.0) -> torch.Tensor:
    """(len(pos), d) sin/cos code of positions in bins (0..1024), periods from 64 to 4096 bins:
    neighbouring bins get similar codes, every bin of the image a distinct one."""
    periods = torch.exp(torch.linspace(math.log(min_period), math.log(max_period), d // 2))
    ang = pos.float()[:, None] * (2 * math.pi / periods[None])
    out = torch.zeros(len(pos), d)
    out[:, 0::2], out[:, 1::2] = torch.sin(ang), torch.cos(ang)
    return out


@torch.no_grad()
def _position_codes(model, tok, r: Recipe) -> None:
    """Location tokens = [code(bin), code(bin)]; patch (row, col) position = [code(x), code(y)] of
    its centre; projector = identity. See the module docstring for why."""
    from worker.codecs import LOC_TOKENS

    half = r.hidden // 2
    emb = model.get_input_embeddings().weight
    ids = tok.convert_tokens_to_ids(LOC_TOKENS)
    code = sincos(torch.arange(len(LOC_TOKENS)), half)
    emb[ids] = torch.cat([code, code], 1) * float(emb.std()) * 1.5
    g = r.image_size // r.patch
    centres = (torch.arange(g) + 0.5) / g * 1024
    yy, xx = torch.meshgrid(centres, centres, indexing="ij")
    pe = model.model.vision_tower.embeddings.position_embedding.weight
    pe.copy_(torch.cat([sincos(xx.reshape(-1), half), sincos(yy.reshape(-1), half)], 1) * float(pe.std()))
    proj = model.model.multi_modal_projector.linear
    proj.weight.copy_(torch.eye(*proj.weight.shape))
    proj.bias.zero_()


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

class PatchTargets:
    """The auxiliary dense targets of one image on the vision tower's g x g patch grid: how much of
    each patch is covered by a kart box (objectness, 0..1) and, for patches whose centre is inside
    a box, that box (the smallest one) in 0..1 image units."""

    def __init__(self, grid: int):
        self.g = grid
        c = (torch.arange(grid) + 0.5) / grid
        yy, xx = torch.meshgrid(c, c, indexing="ij")
        self.cx, self.cy = xx.reshape(-1), yy.reshape(-1)
        self.lo = torch.arange(grid) / grid

    def __call__(self, boxes: list[Box], width: int, height: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n, g, lo = self.g * self.g, self.g, self.lo
        obj, reg, has = torch.zeros(n), torch.zeros(n, 4), torch.zeros(n, dtype=torch.bool)
        area = torch.full((n,), math.inf)
        for b in boxes:
            x1, y1, x2, y2 = b.x1 / width, b.y1 / height, b.x2 / width, b.y2 / height
            ox = ((lo + 1 / g).clamp(max=x2) - lo.clamp(min=x1)).clamp(min=0) * g  # share of each column
            oy = ((lo + 1 / g).clamp(max=y2) - lo.clamp(min=y1)).clamp(min=0) * g
            obj = torch.maximum(obj, (oy[:, None] * ox[None, :]).reshape(-1))
            inside = (self.cx >= x1) & (self.cx <= x2) & (self.cy >= y1) & (self.cy <= y2)
            smaller = inside & ((x2 - x1) * (y2 - y1) < area)
            area[smaller] = (x2 - x1) * (y2 - y1)
            reg[smaller] = torch.tensor([x1, y1, x2, y2])
            has |= smaller
        return obj, reg, has


def soft_token_loss(logits: torch.Tensor, labels: torch.Tensor, loc_ids: torch.Tensor, sigma: float) -> torch.Tensor:
    """Mean next-token cross-entropy over answer tokens; where the target is a location token the
    target is a Gaussian over the neighbouring bins (sigma in bins) instead of one bin."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    keep = labels != -100
    lg, lb = logits[keep], labels[keep]
    bin_of = torch.full((logits.shape[-1],), -1, dtype=torch.long)
    bin_of[loc_ids] = torch.arange(len(loc_ids))
    b = bin_of[lb]
    loc = b >= 0
    total = torch.nn.functional.cross_entropy(lg[~loc], lb[~loc], reduction="sum")
    if loc.any():
        bins = torch.arange(len(loc_ids), dtype=torch.float32)
        w = torch.softmax(-0.5 * ((bins[None] - b[loc, None].float()) / sigma) ** 2, dim=-1)
        total = total - (w * torch.log_softmax(lg[loc], -1)[:, loc_ids]).sum()
    return total / max(int(keep.sum()), 1)


def pretrain(base: Path, samples: list[Sample], r: Recipe, log=print, progress=None) -> tuple:
    """Full-parameter training (AdamW, warm-up + cosine) of the model in `base` on detection
    samples, with the soft location loss plus the auxiliary patch loss (see the module docstring);
    returns (model, processor, token losses)."""
    from worker.codecs import LOC_TOKENS
    from worker.families import get_family

    family = get_family(FAMILY)
    model, processor = family.load(str(base), dtype=torch.float32)
    model.train()
    loc_ids = torch.tensor(processor.tokenizer.convert_tokens_to_ids(LOC_TOKENS))
    targets = PatchTargets(r.image_size // r.patch)
    head = torch.nn.Linear(r.hidden, 5)  # objectness logit + box; discarded after pre-training
    patches: dict[str, torch.Tensor] = {}
    hook = family.vision_model(model).register_forward_hook(
        lambda _m, _i, out: patches.__setitem__("h", out.last_hidden_state))
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=r.lr, weight_decay=0.0)
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
        chunk = [samples[i] for i in order[:r.batch_size]]
        del order[:r.batch_size]
        batch = family.build_batch(processor, chunk, train=True)
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        loss = soft_token_loss(logits, batch["labels"], loc_ids, r.loc_sigma)
        losses.append(float(loss.detach()))
        obj, reg, has = map(torch.stack, zip(*(targets(s.boxes, *s.image.size) for s in chunk)))
        out = head(patches.pop("h"))
        aux = torch.nn.functional.binary_cross_entropy_with_logits(out[..., 0], obj)
        if has.any():
            aux = aux + (torch.sigmoid(out[..., 1:]) - reg).abs().sum(-1)[has].mean()
        loss = loss + r.aux_weight * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if progress is not None:
            progress(step + 1, r.steps)
        if (step + 1) % 50 == 0 or step + 1 == r.steps:
            log(f"pre-train step {step + 1}/{r.steps} loss {sum(losses[-50:]) / len(losses[-50:]):.3f} "
                f"({time.perf_counter() - t0:.0f} s)")
    hook.remove()
    model.eval()
    return model, processor, losses


def detection_curriculum(samples: list[Sample]) -> list[Sample]:
    """The pre-training set: detection samples of frames with karts, largest kart first (the
    fine-tune's object_order "largest_first")."""
    from worker.training import largest_first

    return [dataclasses.replace(s, boxes=largest_first(s.boxes)) for s in samples if s.task == "detect" and s.boxes]


def ensure_pretrained(data_dir: str | Path, r: Recipe | None = None, *, log=print, progress=None) -> Path:
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
    log(f"drew {r.n_images} synthetic scenes ({time.perf_counter() - t0:.0f} s)")
    samples = detection_curriculum(synthetic_samples(tmp / "synthetic", seed=r.seed))
    build_base(tmp / "init", r)
    log(f"{len(samples)} detection samples, base model initialised ({time.perf_counter() - t0:.0f} s); "
        f"{r.steps} steps next")
    model, processor, losses = pretrain(tmp / "init", samples, r, log, progress)
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
