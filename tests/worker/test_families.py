"""Every family on its tiny model: load like a hub model, masked labels, loss + backward, generate."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image

from worker.families import REGISTRY, detect_family, get_family
from worker.types import BadImage, Box, FamilyMismatch, ModelNotFound, Sample

FAMILIES = sorted(REGISTRY)


@pytest.fixture(scope="module")
def loaded(tiny_models):
    cache = {}

    def get(name):
        if name not in cache:
            fam = get_family(name)
            cache[name] = (fam, *fam.load(str(tiny_models[name])))
        return cache[name]
    return get


def samples():
    a = Image.new("RGB", (96, 64), (200, 30, 30))
    b = Image.new("RGB", (50, 80), (30, 30, 200))
    return [Sample(a, classes=["kart", "traffic light"], boxes=[Box("kart", 4, 5, 60, 50),
                                                                 Box("traffic light", 0, 0, 96, 64)], image_id=1),
            Sample(b, task="vqa", question="how many karts are there?", answer="2", image_id=2),
            Sample(a, task="vqa", question="where is the kart?", answer="the kart is at {box0}",
                   boxes=[Box("kart", 4, 5, 60, 50)], image_id=3)]


@pytest.mark.parametrize("name", FAMILIES)
def test_tiny_model_trains_one_step(name, loaded, tiny_models):
    fam, model, processor = loaded(name)
    size = sum(f.stat().st_size for f in tiny_models[name].iterdir()) / 1e6
    assert size < 8, f"tiny {name} is {size:.1f} MB"
    assert detect_family(str(tiny_models[name])).name == name
    batch = fam.build_batch(processor, samples(), train=True)
    labels = batch["labels"]
    tok = processor.tokenizer
    for i, s in enumerate(samples()):
        im = s.load_image()
        want = fam.target_text(s, im.width, im.height)
        got = tok.decode(labels[i][labels[i] != -100])
        # exactly the answer (+ the end token) is trained, nothing of the prompt or the image
        assert got.replace(" ", "").startswith(want.replace(" ", "")), (got, want)
        assert (labels[i] != -100).sum() <= len(tok(want + fam.answer_end(processor),
                                                    add_special_tokens=False)["input_ids"]) + 1
    if name == "paligemma":
        assert "token_type_ids" in batch
    model.train()
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.zero_grad()
    model.eval()


@pytest.mark.parametrize("name", FAMILIES)
def test_generate_returns_text(name, loaded):
    fam, model, processor = loaded(name)
    batch = fam.build_batch(processor, samples(), train=False)
    assert (batch["attention_mask"][:, -1] == 1).all(), "generation batches must be left padded"
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=5, do_sample=False)
    texts = processor.batch_decode(out[:, batch["input_ids"].shape[1]:])
    assert len(texts) == 3 and all(isinstance(t, str) and t for t in texts)


@pytest.mark.parametrize("name", FAMILIES)
def test_parameter_groups_are_disjoint_and_cover_lora(name, loaded):
    fam, model, _ = loaded(name)
    groups = [set(map(id, g(model))) for g in (fam.vision_params, fam.projector_params, fam.language_params)]
    assert all(groups)
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    targets = fam.lora_target_modules(model)
    modules = dict(model.named_modules())
    assert targets and all(isinstance(modules[t], torch.nn.Linear) for t in targets)
    # every part's Linears (the frozen ones are dropped later, by training.resolve_target_modules)
    for group in groups:
        assert any(id(modules[t].weight) in group for t in targets)
    assert not any(t.endswith("lm_head") for t in targets)


def test_missing_model_folder(tmp_path):
    with pytest.raises(ModelNotFound, match="does not exist"):
        get_family("paligemma").load(str(tmp_path / "nope"))
    with pytest.raises(ModelNotFound, match="config.json"):
        get_family("paligemma").load(str(tmp_path))


@pytest.mark.parametrize("name", FAMILIES)
def test_family_mismatch(name, tiny_models, tmp_path):
    other = next(n for n in FAMILIES if n != name) if len(FAMILIES) > 1 else None
    # a real folder of this family loaded by another family, and an unknown model_type
    if other:
        with pytest.raises(FamilyMismatch, match=other):
            get_family(other).load(str(tiny_models[name]))
    bad = tmp_path / "m"
    shutil.copytree(tiny_models[name], bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model_type"] = "bert"
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FamilyMismatch, match="'bert'"):
        get_family(name).load(str(bad))
    with pytest.raises(FamilyMismatch, match="'bert'"):
        detect_family(str(bad))
    with pytest.raises(FamilyMismatch, match="unknown model family"):
        get_family("llava")


@pytest.mark.parametrize("name", FAMILIES)
def test_bad_image(name, loaded, tmp_path):
    fam, _, processor = loaded(name)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    s = Sample(broken, classes=["kart"], image_id=7)
    with pytest.raises(BadImage, match="broken.jpg"):
        fam.build_batch(processor, [s], train=True)
    with pytest.raises(BadImage, match="missing.png"):
        fam.build_batch(processor, [Sample(tmp_path / "missing.png", classes=["kart"])], train=False)


@pytest.mark.parametrize("compute", ["bfloat16", "float32"])
def test_qlora_load_applies_compute_dtype(compute, tiny_models):
    import bitsandbytes as bnb

    fam = get_family("paligemma")
    model, processor = fam.load(str(tiny_models["paligemma"]),
                                quantization={"bits": 4, "quant_type": "nf4", "compute_dtype": compute})
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and all(m.compute_dtype == getattr(torch, compute) for m in layers)
    assert all(m.weight.quant_type == "nf4" for m in layers)
    loss = model(**fam.build_batch(processor, samples()[:1], train=True)).loss
    assert torch.isfinite(loss)


def test_8bit_load_and_bad_bits(tiny_models):
    import bitsandbytes as bnb

    from worker.types import QuantizationUnavailable
    fam = get_family("qwen2_vl")
    model, _ = fam.load(str(tiny_models["qwen2_vl"]), quantization={"bits": 8})
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in model.modules())
    with pytest.raises(QuantizationUnavailable, match="4 or 8"):
        fam.load(str(tiny_models["qwen2_vl"]), quantization={"bits": 3})


def test_hub_id_without_local_folder_needs_family_name():
    with pytest.raises(ModelNotFound, match="name the family"):
        detect_family("google/paligemma2-3b-pt-224")


def test_device_choice():
    from worker.device import pick_device, set_threads
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("tpu")
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
    finally:
        torch.set_num_threads(before)
