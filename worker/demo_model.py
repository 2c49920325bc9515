"""The demo's base model: a tiny PaliGemma pre-trained on REAL SuperTuxKart frames, shipped.

Built with the real classes (GemmaTokenizer trained locally on worker.tiny's corpus plus the QA
templates and kart names, SiglipImageProcessorPil, PaliGemmaProcessor, PaliGemmaConfig /
PaliGemmaForConditionalGeneration), a little bigger than worker.tiny's test model (karts in a
300x200 frame are 10-60 px). Every parameter is trained (`build_pretrained`, seeded; `studio models
build demo`) on the real frames of the shared tracks other than the demo's (DEMO_TRACKS: the demo
fine-tunes and evaluates on tracks this model has never seen), through the SuperTuxKart importer
and backend.qa (detection + counting), and saved in bf16 with a card (`studio_pretraining.json`
with the weights' sha256, README.md) in backend/demo_data/model/, so the demo starts from it in
milliseconds (`ensure_pretrained` copies it into `<data_dir>/models/`).

Why full-parameter pre-training (not LoRA): the model starts random; the demo's fine-tune is the
LoRA part. What makes a from-scratch detector learn on a CPU (without them it answered nothing):
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
  frames: the first answer token is always a location, never "eos or any of the karts";
- random crops and mirrors (worker/augment.py): the camera behind a kart puts it in the same
  place in every frame, so without them the model learns where karts usually are, not to see them
  (measured: centre correlation 0.05 without crops).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import random
import shutil
import time
from pathlib import Path

import torch

from worker.augment import augment, colour_jitter
from worker.copy_paste import CropBank, paste
from worker.demo_recipe import HEADS, OBJECT_ORDER, Recipe, finetune_settings
from worker.types import Box, Sample

FAMILY = "paligemma"
SHARED_FRAMES = Path(__file__).resolve().parents[2] / "shared" / "supertuxkart"  # ../shared from the repo


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
                           num_hidden_layers=r.vision_layers, num_attention_heads=HEADS, image_size=r.image_size,
                           patch_size=r.patch, vision_use_head=False),
        text_config=dict(model_type="gemma2", hidden_size=h, intermediate_size=2 * h,
                         num_hidden_layers=r.text_layers, num_attention_heads=HEADS, num_key_value_heads=2,
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

def frame_samples(folder: Path, families: list[str], seed: int = 0, id_offset: int = 0) -> list[Sample]:
    """The frames of `folder` read by the SuperTuxKart importer, QA from backend.qa, as Samples
    (image ids from `id_offset`)."""
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
            out.append(item_sample(family, img, id_offset + k, it.template_id, it.question, it.answer, it.params()))
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


def soft_token_loss(logits: torch.Tensor, labels: torch.Tensor, soft) -> torch.Tensor:
    """Mean next-token loss over the answer tokens of full (batch, seq, vocab) logits, location
    tokens with soft targets (worker.training.LocationTargets: the fine-tune's loc_sigma is the same loss)."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    keep = labels != -100
    return soft.loss(logits[keep], labels[keep]) / max(int(keep.sum()), 1)


def pretrain(base: Path, samples: list[Sample], r: Recipe, log=print, progress=None) -> tuple:
    """Full-parameter training (AdamW, warm-up + cosine) of the model in `base` on detection
    samples, with the soft location loss plus the auxiliary patch loss (see the module docstring);
    returns (model, processor, token losses)."""
    from worker.families import get_family
    from worker.training import LocationTargets, ordered_objects

    family = get_family(FAMILY)
    model, processor = family.load(str(base), dtype=torch.float32)
    model.train()
    soft = LocationTargets(processor.tokenizer.convert_tokens_to_ids(family.location_tokens()), r.loc_sigma)
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
    # Two shuffled streams, detection and questions; each batch slot draws detection with
    # probability det_share (a frame has one detection sample but up to ~8 questions).
    pools = {True: [i for i, s in enumerate(samples) if s.task == "detect"],
             False: [i for i, s in enumerate(samples) if s.task != "detect"]}
    queues: dict[bool, list[int]] = {True: [], False: []}
    weights = answer_weights([samples[i] for i in pools[False]], r.balance)
    cum = list(itertools.accumulate(weights)) if weights else None  # once, not per draw

    def draw() -> int:
        want = bool(pools[True]) and (not pools[False] or rng.random() < r.det_share)
        if not want and cum:  # with replacement: the balanced draw repeats rare answers
            return rng.choices(pools[False], cum_weights=cum)[0]
        if not queues[want]:
            queues[want] = rng.sample(pools[want], len(pools[want]))
        return queues[want].pop()

    bank = CropBank.from_samples(samples, seed=r.seed) if r.paste else None

    def view(s: Sample) -> Sample:
        if bank is not None and s.task == "detect" and rng.random() < r.paste:
            s = paste(s, bank, rng)
        s = colour_jitter(s, rng, r.colour)  # draws nothing when off: older recipes rebuild the same
        return ordered_objects(augment(s, "crop_flip", rng, r.crop), OBJECT_ORDER, r.seed, 0, 0)

    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(r.steps):
        chunk = [view(samples[draw()]) for _ in range(r.batch_size)]
        batch = family.build_batch(processor, chunk, train=True)
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        loss = soft_token_loss(logits, batch["labels"], soft)
        losses.append(float(loss.detach()))
        # The dense patch loss only where the boxes are the whole truth: detection samples (a
        # question's Sample carries no boxes, and "no kart here" would be a wrong target).
        det = [k for k, s in enumerate(chunk) if s.task == "detect"]
        h = patches.pop("h")
        if det:
            obj, reg, has = map(torch.stack, zip(*(targets(chunk[k].boxes, *chunk[k].image.size) for k in det)))
            out = head(h[det])
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


def answer_weights(questions: list[Sample], templates: tuple[str, ...]) -> list[float] | None:
    """Sampling weights that draw every answer of each template in `templates` equally often, the
    template's total share unchanged (n_t / (answers_t * n_t,a)); other questions weigh 1. None
    when nothing is balanced."""
    from collections import Counter

    if not templates:
        return None
    per_t = Counter(q.qtype for q in questions)
    per_ta = Counter((q.qtype, q.answer) for q in questions)
    n_answers = Counter(t for t, _ in per_ta)
    return [per_t[q.qtype] / (n_answers[q.qtype] * per_ta[q.qtype, q.answer]) if q.qtype in templates else 1.0
            for q in questions]


def curriculum(samples: list[Sample], r: Recipe | None = None) -> list[Sample]:
    """Detection samples of frames with karts, largest kart first (the fine-tune's object_order
    "largest_first"): the first answer token is always a location, never "eos or any kart";
    without the boxes under `r.min_box` input pixels; question samples as they are."""
    from worker.training import largest_first

    def seen(s: Sample) -> list[Box]:
        if not r or not r.min_box:
            return s.boxes
        w, h = s.image.size if hasattr(s.image, "size") else s.load_image().size
        sx, sy = r.image_size / w, r.image_size / h
        return [b for b in s.boxes if max((b.x2 - b.x1) * sx, (b.y2 - b.y1) * sy) >= r.min_box]

    out = []
    for s in samples:
        if s.task != "detect":
            out.append(s)
        elif boxes := seen(s):
            out.append(dataclasses.replace(s, boxes=largest_first(boxes)))
    return out


def pretraining_samples(frames: Path, r: Recipe, log=print) -> tuple[list[Sample], dict[str, int]]:
    """The pre-training set: every track folder of `frames` except the demo's (DEMO_TRACKS: its
    fine-tuning and held-out tracks are never seen here), read by the SuperTuxKart importer, QA from
    backend.qa; plus `r.n_synthetic` drawn scenes. Returns (samples, {track: frames})."""
    from backend.demo import DEMO_TRACKS

    tracks = sorted(p.name for p in Path(frames).iterdir() if p.is_dir() and p.name not in DEMO_TRACKS
                    and any(p.glob("*_info.json")))
    if not tracks:
        raise FileNotFoundError(f"no SuperTuxKart track folders (other than the demo's) under {frames}")
    samples: list[Sample] = []
    counts: dict[str, int] = {}
    for t in tracks:
        part = frame_samples(Path(frames) / t, list(r.families), seed=r.seed, id_offset=len(samples))
        counts[t] = sum(1 for x in part if x.task == "detect")
        samples += part * (r.repeat if t in r.repeat_tracks else 1)
    repeated = r.repeated(tracks)
    log(f"{sum(counts.values())} real frames of {len(tracks)} tracks: {', '.join(tracks)}"
        + (f"; {', '.join(repeated)} repeated {r.repeat}x" if repeated else ""))
    return curriculum(samples, r), counts


def write_card(out: Path, meta: dict) -> None:
    """studio_pretraining.json (what the catalogue reads) with the weights' sha256, and README.md."""
    from backend.demo import DEMO_TRACKS, FINETUNE_TRACKS, HELD_OUT_TRACKS

    meta = {**meta, "weights": "model.safetensors", "sha256": file_sha256(out / "model.safetensors"),
            "bytes": (out / "model.safetensors").stat().st_size}
    (out / "studio_pretraining.json").write_text(json.dumps(meta, indent=2) + "\n")
    ev = meta.get("held_out") or {}
    lines = [
        "# Demo base model: tiny PaliGemma pre-trained on real SuperTuxKart frames", "",
        f"- Architecture: PaliGemma (SigLIP vision tower + Gemma 2), {meta['parameters'] / 1e6:.2f} M parameters, "
        f"stored in bf16 ({meta['bytes'] / 1e6:.1f} MB); real transformers classes, loads with from_pretrained.",
        f"- Pre-trained on: {meta['data']}", f"- Tracks: {', '.join(f'{t} ({n})' for t, n in meta['tracks'].items())}.",
        f"- Never seen: {', '.join(DEMO_TRACKS)} (the demo fine-tunes on {', '.join(FINETUNE_TRACKS)} and "
        f"evaluates on {', '.join(HELD_OUT_TRACKS)}).",
        f"- Tasks: {', '.join(meta['families'])}; {meta['samples']} samples; recipe: `{json.dumps(meta['recipe'])}`.",
        f"- Training: {meta['recipe']['steps']} steps in {meta['seconds'] / 60:.1f} min wall, "
        f"{meta['cpu_seconds'] / 60:.1f} min CPU ({meta['threads']} thread{'s' * (meta['threads'] != 1)}); token loss "
        f"{meta['loss_first']:.2f} -> {meta['loss_last']:.2f}.",
        f"- Its own held-out numbers (zero-shot, frames of {', '.join(ev.get('tracks', []))}, never trained on): "
        + numbers_text(ev) + ".",
        finetune_line(meta["recipe"]),
        "- Rebuild from scratch: `studio models build demo --inline --frames ../shared/supertuxkart --out DIR` "
        "(seeded; prints its CPU time).", f"- sha256 of model.safetensors: `{meta['sha256']}`", ""]
    (out / "README.md").write_text("\n".join(lines))


def finetune_line(recipe: dict) -> str:
    """The card's line on how to fine-tune the base (worker.demo_recipe.finetune_settings)."""
    settings = ", ".join(f"`{k}: {v}`" for k, v in finetune_settings(recipe).items())
    return (f"- Fine-tune it with {settings}: the object order and the loss it was pre-trained with (the "
            "catalogue suggests them and the run form fills them in).")


def numbers_text(d: dict) -> str:
    """"AP50 0.305, mAP 0.108, ..." of a zero_shot result (its float values)."""
    return ", ".join(f"{k} {v:.3f}" for k, v in d.items() if isinstance(v, float))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@torch.no_grad()
def zero_shot(model, processor, frames: Path, tracks: list[str], every: int = 2) -> dict:
    """The pre-trained model on frames it was never trained on (no fine-tune): AP50, F1@50, whether
    its boxes depend on the image (worker.metrics.image_dependence), and counting accuracy."""
    from worker.families import get_family
    from worker.inference import predict
    from worker.metrics import ImageTruth, detection_metrics, vqa_accuracy

    family = get_family(FAMILY)
    val: list[Sample] = []
    for t in tracks:
        if (Path(frames) / t).is_dir():
            val += frame_samples(Path(frames) / t, ["detection", "counting"], id_offset=len(val))
    det = curriculum([s for s in val if s.task == "detect"])[::every]
    cnt = [s for s in val if s.qtype == "count_total"][::every]
    preds = predict(model, processor, family, det, batch_size=16, max_new_tokens=40)
    truths = [ImageTruth(s.image_id, *s.image.size, s.boxes) for s in det]
    m = detection_metrics(truths, {p.image_id: p.boxes for p in preds})
    cp = predict(model, processor, family, cnt, batch_size=16, max_new_tokens=6) if cnt else []
    return {"tracks": tracks, "frames": len(det), "AP50": float(m["ap50"]), "mAP": float(m["map"]),
            "F1@50": float(m["f1"]), "distinct boxes": float(m["distinct_boxes"] or 0),
            "centre r x": float(m["centre_r_x"] or 0), "centre r y": float(m["centre_r_y"] or 0),
            "counting accuracy": float(vqa_accuracy([p.answer for p in cp], [s.answer for s in cnt])["accuracy"] or 0)}


def build_pretrained(out: Path, r: Recipe, frames: Path | None = None, *, log=print, progress=None) -> Path:
    """The committed, seeded pre-training script: a random tiny PaliGemma trained on the real frames
    of `frames` (default ../shared/supertuxkart; minus the demo's tracks), evaluated zero-shot on
    the demo's fine-tuning tracks when they are there, saved in bf16 with its card. Minutes to an
    hour of CPU; written atomically."""
    from backend.demo import DEMO_TRACKS, FINETUNE_TRACKS

    out, frames = Path(out), Path(frames) if frames else SHARED_FRAMES
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(r.seed)
    samples, counts = pretraining_samples(frames, r, log)
    if r.n_synthetic:
        from worker.synth_karts import write_dataset

        write_dataset(tmp / "synthetic", r.n_synthetic, seed=1000 + r.seed)
        samples += curriculum(frame_samples(tmp / "synthetic", list(r.families), seed=r.seed, id_offset=len(samples)),
                              r)
    build_base(tmp / "init", r)
    log(f"{len(samples)} samples ({', '.join(r.families)}), base initialised ({time.perf_counter() - t0:.0f} s); "
        f"{r.steps} steps next")
    model, processor, losses = pretrain(tmp / "init", samples, r, log, progress)
    held = zero_shot(model, processor, frames, list(FINETUNE_TRACKS)) if any(
        (Path(frames) / t).is_dir() for t in FINETUNE_TRACKS) else {}
    if held:
        log("zero-shot on " + ", ".join(FINETUNE_TRACKS) + ": " + numbers_text(held))
    from worker.tiny import _save

    _save(model.to(torch.bfloat16), processor, tmp / "model", processor.tokenizer)
    repeated = r.repeated(counts)
    write_card(tmp / "model", {
        "data": f"{sum(counts.values())} REAL SuperTuxKart frames of {len(counts)} track{'s' * (len(counts) != 1)} "
                "(game engine labels)"
                + (f", {', '.join(repeated)} drawn {r.repeat}x as often" if repeated else "")
                + (f" and {r.n_synthetic} synthetic scenes" if r.n_synthetic else ""),
        "tracks": counts, "never_seen": list(DEMO_TRACKS), "families": list(r.families),
        "recipe": dataclasses.asdict(r), "samples": len(samples), "parameters": sum(p.numel() for p in model.parameters()),
        "loss_first": losses[0], "loss_last": sum(losses[-50:]) / len(losses[-50:]),
        "loss_curve": [round(sum(losses[i:i + 100]) / len(losses[i:i + 100]), 4) for i in range(0, len(losses), 100)],
        "held_out": held, "seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(time.process_time() - c0, 1), "threads": torch.get_num_threads()})
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(tmp / "model"), str(out))  # a half-trained folder is never picked up
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"pre-trained in {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU -> {out}")
    return out


def ensure_pretrained(data_dir: str | Path, r: Recipe | None = None, *, scratch: bool = False,
                      frames: Path | None = None, log=print, progress=None) -> Path:
    """The demo's base model folder under `<data_dir>/models/`: the shipped weights (pre-trained on
    real frames; backend/demo_data/model), copied in once, unless a recipe is given or `scratch` is
    set: then pre-trained here from scratch on `frames` (default ../shared/supertuxkart), cached by
    the recipe's key."""
    from backend.catalog import DEMO_PREFIX, install_shipped_demo

    models = Path(data_dir) / "models"
    if r is None and not scratch:
        shipped = install_shipped_demo(models)
        if shipped is not None:
            return shipped
    r = r or Recipe()
    out = models / f"{DEMO_PREFIX}{r.key()}"
    if (out / "config.json").is_file():
        return out
    log(f"pre-training the tiny PaliGemma from scratch on the real frames under {frames or SHARED_FRAMES} (not the "
        f"demo's tracks); cached in {out}")
    return build_pretrained(out, r, frames, log=log, progress=progress)
