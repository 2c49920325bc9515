"""The GPU path proven on the CPU (issue 10): loss logits only where labels are, greedy decoding
whatever the checkpoint's generation_config says, an auto max_new_tokens that fits every answer,
label-free region questions, codecs, the max_pixels cap, freeze knobs that train what they say,
and half-precision adapters / merges."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from worker import codecs
from worker.decoding import auto_max_new_tokens, tokens_per_object
from worker.device import eval_precision, resolve_dtype
from worker.families import get_family
from worker.inference import predict
from worker.train_config import TrainConfig
from worker.training import build_model, merge, token_loss, train
from worker.types import Box, Sample

FAMILIES = ["paligemma", "qwen2_vl", "qwen2_5_vl", "smolvlm"]
torch.set_num_threads(1)


def _img(w=64, h=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray((torch.rand(h, w, 3, generator=g) * 255).byte().numpy())


def _det(n, seed=0, w=64, h=48):
    boxes = [Box(["kart", "traffic light", "banana"][i % 3], 1 + i, 2 + i, w - 1 - i % 5, h - 2) for i in range(n)]
    return Sample(image=_img(w, h, seed), task="detect", classes=["kart", "traffic light", "banana"], boxes=boxes,
                  image_id=seed)


def _vqa(seed=0):
    return Sample(image=_img(seed=seed), task="vqa", question="What is in the box {box0}?", answer="kart",
                  boxes=[Box("kart", 3, 4, 40, 30)], image_id=100 + seed)


# --------------------------------------------------------------------------- memory: the loss
def test_token_loss_projects_only_answer_positions_and_equals_the_full_loss(tiny_models):
    fam = get_family("qwen2_5_vl")
    model, proc = fam.load(str(tiny_models["qwen2_5_vl"]))
    batch = fam.build_batch(proc, [_det(3, 0), _vqa(1)], train=True)
    rows = []
    h = model.lm_head.register_forward_hook(lambda m, i, o: rows.append(i[0].shape))
    with torch.no_grad():
        s, k = token_loss(model, batch)
        h.remove()
        full = model(**{k2: v for k2, v in batch.items() if k2 != "labels"}).logits
    labels = batch["labels"]
    ref = torch.nn.functional.cross_entropy(full[:, :-1].reshape(-1, full.size(-1)).float(),
                                            labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum")
    assert k == int((labels[:, 1:] != -100).sum())
    assert torch.allclose(s, ref, rtol=1e-5)
    # the head saw (answer tokens, hidden) rows, not batch x sequence
    assert rows[0][0] == k and rows[0][0] < labels.numel() / 2


# --------------------------------------------------------------------------- decoding
def test_greedy_decoding_overrides_the_checkpoints_generation_config(tiny_models, tmp_path):
    fam = get_family("smolvlm")
    model, proc = fam.load(str(tiny_models["smolvlm"]))
    samples = [_det(2, s) for s in range(3)]
    clean = predict(model, proc, fam, samples, batch_size=3, max_new_tokens=24)
    model.generation_config.repetition_penalty = 50.0  # what a checkpoint's generation_config.json may set
    model.generation_config.no_repeat_ngram_size = 1
    ours = predict(model, proc, fam, samples, batch_size=3, max_new_tokens=24)
    assert [p.text for p in ours] == [p.text for p in clean]
    # the penalty does change a plain generate() here, so the equality above is the override's doing
    batch = fam.build_batch(proc, samples, train=False)
    plain = model.generate(**batch, max_new_tokens=24, pad_token_id=proc.tokenizer.pad_token_id)
    texts = proc.tokenizer.batch_decode(plain[:, batch["input_ids"].shape[1]:], skip_special_tokens=False)
    assert any(t != p.text and not t.startswith(p.text) for t, p in zip(texts, clean))


@pytest.mark.parametrize("family", FAMILIES)
def test_auto_max_new_tokens_covers_every_held_out_answer(tiny_models, family):
    fam = get_family(family)
    _, proc = fam.load(str(tiny_models[family]))
    held_out = [_det(n, n, w=640 + 7 * n, h=480) for n in (0, 1, 5, 12)] + [_vqa(0)]
    sizes = [s.image.size for s in held_out]
    budget = auto_max_new_tokens(fam, proc, held_out, sizes)
    tok = proc.tokenizer
    for s, (w, h) in zip(held_out, sizes):
        need = len(tok(fam.target_text(s, w, h) + fam.answer_end(proc), add_special_tokens=False)["input_ids"])
        assert need <= budget, (family, len(s.boxes), need, budget)
    per = tokens_per_object(fam, proc, ["kart", "traffic light"], 640, 480)
    assert budget >= per * 14  # 12 objects + 2 spare


# --------------------------------------------------------------------------- codecs and prompts
@pytest.mark.parametrize("family", FAMILIES)
def test_region_questions_do_not_contain_the_answer(tiny_models, family):
    fam = get_family(family)
    _, proc = fam.load(str(tiny_models[family]))
    q = fam.prompt(Sample(image=_img(), task="vqa", question="What is in the box {box0}?", answer="banana",
                          boxes=[Box("banana", 3, 4, 40, 30)]))
    assert "banana" not in q and "region" not in q and "{box0}" not in q


def test_qwen2_coordinates_stay_in_0_999_and_qwen25_keeps_non_ascii_labels():
    edge = Box("kart", 0, 0, 640, 480)
    assert "(999,999)" in codecs.encode_qwen2([edge], 640, 480) and "1000" not in codecs.encode_qwen2([edge], 640, 480)
    text = codecs.encode_qwen25([Box("café", 10, 20, 300, 200)], 640, 480, (476, 644), fenced=True)
    assert "café" in text and "\\u00e9" not in text and text.startswith("```json\n[\n\t{")
    (span,) = codecs.decode_qwen25(text, 640, 480, ["café"], (476, 644))
    assert span.box.label == "café" and span.box.known


def test_decoders_tolerate_prose_and_use_the_asked_class():
    prose = "Sure! Here are the objects: the kart [100, 200, 300, 400]; and a banana [1, 2, 3, 4]."
    got = codecs.decode_plain(prose, 1000, 1000, ["kart", "banana"])
    assert [(b.box.label, b.box.known) for b in got] == [("kart", True), ("banana", True)]
    unlabelled = '```json\n[{"bbox_2d": [10, 20, 30, 40]}]\n```'
    (one,) = codecs.decode_qwen25(unlabelled, 100, 100, ["kart"], (100, 100))
    assert one.box.label == "kart" and one.box.known
    assert codecs.decode_qwen25(unlabelled, 100, 100, ["kart", "car"], (100, 100)) == []
    (q2,) = codecs.decode_qwen2("<|box_start|>(10,20),(30,40)<|box_end|>", 1000, 1000, ["ball"])
    assert q2.box.label == "ball"


def test_max_pixels_caps_the_qwen_input_and_the_codec_follows(tiny_models):
    fam = get_family("qwen2_5_vl")
    fam.pixel_cap = 56 * 56 * 2
    _, proc = fam.load(str(tiny_models["qwen2_5_vl"]))
    s = _det(2, 0, w=200, h=150)
    batch = fam.build_batch(proc, [s], train=False)
    t, gh, gw = batch["image_grid_thw"][0].tolist()
    rh, rw = fam.resized_size(200, 150)
    assert (gh * 14, gw * 14) == (rh, rw) and rh * rw <= 56 * 56 * 2
    uncapped = get_family("qwen2_5_vl")
    _, proc2 = uncapped.load(str(tiny_models["qwen2_5_vl"]))
    assert uncapped.resized_size(200, 150)[0] * uncapped.resized_size(200, 150)[1] > rh * rw
    back = fam.decode_boxes(fam.target_text(s, 200, 150), 200, 150, s.classes)
    for a, b in zip(back, s.boxes):  # exact up to one resized pixel
        assert abs(a.x1 - b.x1) <= 200 / rw and abs(a.y2 - b.y2) <= 150 / rh


def test_compute_dtype_auto_and_eval_precision():
    assert resolve_dtype("auto", "cpu") == "float32" and resolve_dtype("float16", "cpu") == "float16"
    assert eval_precision("qlora", 4, "nf4", "auto", "cpu") == ("float32", None, "float32 (CPU)")
    dtype, q, note = eval_precision("qlora", 4, "nf4", "bfloat16", "cuda")
    assert q == {"bits": 4, "quant_type": "nf4", "compute_dtype": "bfloat16"} and "4-bit" in note
    assert eval_precision("lora", 4, "nf4", "float16", "cuda:1")[:2] == ("float16", None)
    assert TrainConfig(family="f", base_model="b", output_dir="o").compute_dtype == "auto"


# --------------------------------------------------------------------------- knobs train what they say
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("frozen", [(), ("vision",), ("vision", "projector")])
def test_unfrozen_parts_get_lora_and_frozen_parts_none(tiny_models, tmp_path, family, frozen):
    fam = get_family(family)
    cfg = TrainConfig(family=family, base_model=str(tiny_models[family]), output_dir=str(tmp_path),
                      **{f"freeze_{p}": p in frozen for p in ("vision", "projector", "language")})
    model, _ = build_model(fam, cfg)
    inner = model.get_base_model()
    trainable = {id(p) for p in inner.parameters() if p.requires_grad}
    for part in ("vision", "projector", "language"):
        n = sum(1 for p in getattr(fam, f"{part}_params")(inner) if id(p) in trainable)
        if part in frozen:
            assert n == 0, f"{family}: trainable tensors in frozen {part}"
        else:
            assert n > 0, f"{family}: nothing trainable in unfrozen {part}"


# --------------------------------------------------------------------------- dtypes of what is saved
def test_adapter_in_training_dtype_and_merge_in_half(tiny_models, tmp_path):
    pg = tiny_models["paligemma"]
    data = [_det(2, s) for s in range(2)]
    res = train(TrainConfig(family="paligemma", base_model=str(pg), output_dir=str(tmp_path / "a"), max_steps=1,
                            batch_size=2, compute_dtype="bfloat16"), data, progress=lambda p: None)
    sd = load_file(res.adapter_dir / "adapter_model.safetensors")
    assert sd and all(v.dtype == torch.bfloat16 for v in sd.values())
    out = merge(pg, res.adapter_dir, tmp_path / "merged")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg.get("dtype", cfg.get("torch_dtype")) == "bfloat16"
    merged = load_file(next(out.glob("*.safetensors")))
    assert all(v.dtype == torch.bfloat16 for v in merged.values() if v.is_floating_point())


# --------------------------------------------------------------------------- structure
def test_detection_targets_come_from_the_snapshot_boxes_only(tmp_path):
    from backend.runs import RunConfig
    from backend.storage import ImageStore
    from worker.runner import Executor

    ex = Executor.__new__(Executor)  # the sample builders only read these
    ex.cfg = RunConfig(family="paligemma", base_model="org/m", tasks={"detect": 1.0, "vqa": 0.0})
    ex.labels, ex.store = ["kart", "banana"], ImageStore(tmp_path)
    stale = {"task": "detect", "classes": ["kart"], "boxes": [{"label": "kart", "x1": 0, "y1": 0, "x2": 5, "y2": 5}]}
    ex.snapshot = {"labels": ex.labels, "images": [{
        "id": 1, "sha256": "ab" * 32, "ext": ".png", "split": "train", "width": 64, "height": 48,
        "boxes": [["kart", 10, 10, 30, 30], ["banana", 1, 2, 3, 4]],
        "qa": [[7, "detection", "t", "detect kart", "{box0}", json.dumps(stale)]]}]}
    (s,) = ex.train_samples()
    assert s.classes == ["kart"] and [(b.label, b.x1, b.x2) for b in s.boxes] == [("kart", 10.0, 30.0)]


def test_ml_core_imports_no_web_or_database_layer_and_the_backend_no_torch():
    import subprocess
    import sys

    core = subprocess.run([sys.executable, "-c", "import sys, worker.training, worker.inference, worker.estimate, "
                           "worker.decoding, worker.families, worker.tiny; print(sorted({m.split('.')[0] for m in "
                           "sys.modules} & {'backend', 'sqlalchemy', 'fastapi', 'celery'}))"],
                          capture_output=True, text=True, check=True)
    assert core.stdout.strip() == "[]"
    api = subprocess.run([sys.executable, "-c", "import sys, backend.runs, backend.api.runs; "
                          "print('torch' in sys.modules)"], capture_output=True, text=True, check=True)
    assert api.stdout.strip() == "False"
