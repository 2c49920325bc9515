"""LoRA / QLoRA training loop on the real tiny PaliGemma: config, data order, freezing, scheduler,
checkpoint/resume, cancel, progress, validation, quantisation and merge."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from worker.families import get_family
from worker.synth import DEFAULT_CLASSES, shape_samples
from worker.train_config import BadConfig, TrainConfig
from worker.training import (
    CONFIG_NAME,
    build_model,
    checkpoint_history,
    epoch_batches,
    load_with_adapter,
    merge,
    ordered_objects,
    token_loss,
    train,
    validation_loss,
)
from worker.types import (
    BadImage,
    BadTargetModules,
    Box,
    EmptyDataset,
    FamilyMismatch,
    ModelNotFound,
    QuantizationUnavailable,
    Sample,
)

torch.set_num_threads(1)
ALL_LINEAR_NAMES = ["q_proj", "k_proj", "v_proj", "o_proj", "out_proj", "gate_proj", "up_proj", "down_proj",
                    "fc1", "fc2", "linear"]  # SigLIP + projector + Gemma: LoRA in every part


@pytest.fixture(scope="module")
def pg(tiny_models) -> Path:
    return tiny_models["paligemma"]


def samples(n=12, seed=0, n_objects=(1, 3)):
    return shape_samples(n, seed=seed, size=(56, 56), n_objects=n_objects, min_frac=0.15, max_frac=0.35)


def cfg_for(pg: Path, tmp_path: Path, **kw) -> TrainConfig:
    base = dict(family="paligemma", base_model=str(pg), output_dir=str(tmp_path / "run"), max_steps=4,
                batch_size=4, learning_rate=1e-3, rank=4, alpha=8, dropout=0.1, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def vqa_samples(n=6, seed=5):
    out = []
    for s in shape_samples(n, seed=seed, size=(56, 56), n_objects=1):
        b = s.boxes[0]
        out.append(Sample(image=s.image, task="vqa", question=f"where is the {b.label}?", answer="{box0}",
                          boxes=[b], qtype="where", image_id=s.image_id))
    return out


# --------------------------------------------------------------------------- config (pure Python)

@pytest.mark.parametrize("field,value", [
    ("method", "dora"), ("bits", 3), ("quant_type", "int4"), ("compute_dtype", "bf15"), ("rank", 0),
    ("alpha", 0), ("dropout", 1.0), ("target_modules", "all"), ("target_modules", []),
    ("learning_rate", 0), ("learning_rate", float("nan")), ("max_steps", 0), ("batch_size", 0),
    ("grad_accum", 0), ("scheduler", "step"), ("warmup_ratio", 1.0), ("checkpoint_every", -1),
])
def test_config_rejects_bad_values_naming_the_field(field, value):
    cfg = TrainConfig(family="paligemma", base_model="x", output_dir="o", **{field: value})
    with pytest.raises(BadConfig, match=field):
        cfg.validate()


def test_config_from_dict_rejects_unknown_and_missing_keys():
    with pytest.raises(BadConfig, match="bnb_4bit_compute_dtyp"):
        TrainConfig.from_dict({"family": "paligemma", "base_model": "x", "output_dir": "o",
                               "bnb_4bit_compute_dtyp": "bfloat16"})
    with pytest.raises(BadConfig, match="output_dir"):
        TrainConfig.from_dict({"family": "paligemma", "base_model": "x"})
    with pytest.raises(BadConfig, match="nothing to train"):
        TrainConfig.from_dict({"family": "p", "base_model": "x", "output_dir": "o", "freeze_vision": True,
                               "freeze_projector": True, "freeze_language": True})
    with pytest.raises(BadConfig, match="unknown task"):
        TrainConfig.from_dict({"family": "p", "base_model": "x", "output_dir": "o", "task_weights": {"caption": 1}})
    cfg = TrainConfig.from_dict({"family": "paligemma", "base_model": "x", "output_dir": "o", "rank": 16})
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


# --------------------------------------------------------------------------- data order (pure Python)

def _fake(n, tasks=("detect",)):
    return [Sample(image="unused", task=tasks[i % len(tasks)], classes=["a"]) for i in range(n)]


def test_epoch_batches_cover_every_sample_once_and_change_per_epoch():
    s, lengths = _fake(103), [int(x) for x in np.random.default_rng(0).integers(5, 200, 103)]
    for group in (False, True):
        e0 = epoch_batches(s, lengths, batch_size=8, seed=1, epoch=0, group_by_length=group, mega_batch_factor=4)
        assert sorted(i for b in e0 for i in b) == list(range(103))
        assert all(1 <= len(b) <= 8 for b in e0)
        assert e0 == epoch_batches(s, lengths, batch_size=8, seed=1, epoch=0, group_by_length=group,
                                   mega_batch_factor=4)  # deterministic
        e1 = epoch_batches(s, lengths, batch_size=8, seed=1, epoch=1, group_by_length=group, mega_batch_factor=4)
        assert e0 != e1


def _padding_efficiency(batches, lengths):
    real = sum(lengths[i] for b in batches for i in b)
    return real / sum(max(lengths[i] for i in b) * len(b) for b in batches)


def test_length_grouping_cuts_padding():
    rng = np.random.default_rng(0)
    lengths = [int(x) for x in rng.integers(10, 300, 2000)]
    s = _fake(2000)
    rand = epoch_batches(s, lengths, batch_size=16, seed=0, epoch=0, group_by_length=False)
    grouped = epoch_batches(s, lengths, batch_size=16, seed=0, epoch=0, group_by_length=True)
    assert _padding_efficiency(rand, lengths) < 0.7
    assert _padding_efficiency(grouped, lengths) > 0.95
    # batches are still shuffled: the first batches are not simply the longest
    firsts = [max(lengths[i] for i in b) for b in grouped[:10]]
    assert firsts != sorted(firsts, reverse=True)


def test_task_weights_resample_tasks_per_epoch():
    s = _fake(100, tasks=("detect", "vqa"))  # 50 each
    b = epoch_batches(s, [1] * 100, batch_size=10, seed=0, epoch=0, group_by_length=False,
                      task_weights={"detect": 1.0, "vqa": 0.4})
    flat = [i for x in b for i in x]
    assert sum(s[i].task == "detect" for i in flat) == 50
    assert sum(s[i].task == "vqa" for i in flat) == 20
    b2 = epoch_batches(s, [1] * 100, batch_size=10, seed=0, epoch=0, group_by_length=False,
                       task_weights={"detect": 2.0, "vqa": 0.0})
    flat2 = [i for x in b2 for i in x]
    assert len(flat2) == 100 and all(s[i].task == "detect" for i in flat2)


def test_a_question_family_weighs_its_own_questions():
    # 40 detection, 40 counting and 20 spatial questions; spatial drawn 3 times an epoch, the other
    # questions by the vqa weight
    s = _fake(40) + [Sample(image="unused", task="vqa", question="q", answer="1", qtype="counting")] * 40 \
        + [Sample(image="unused", task="vqa", question="q", answer="behind", qtype="spatial")] * 20
    b = epoch_batches(s, [1] * 100, batch_size=10, seed=0, epoch=0, group_by_length=False,
                      task_weights={"detect": 1.0, "vqa": 0.5, "vqa:spatial": 3.0})
    drawn = [s[i].qtype or s[i].task for x in b for i in x]
    assert (drawn.count("detect"), drawn.count("counting"), drawn.count("spatial")) == (40, 20, 60)
    # every spatial question is drawn 3 times, not one of them 60 times
    spatial = [i for x in b for i in x if s[i].qtype == "spatial"]
    assert sorted(spatial) == sorted(list(range(80, 100)) * 3)
    # a family weight for questions not in the data changes nothing
    assert epoch_batches(s, [1] * 100, batch_size=10, seed=0, epoch=0, group_by_length=False,
                         task_weights={"detect": 1.0, "vqa": 0.5, "vqa:region": 9.0}) == epoch_batches(
        s, [1] * 100, batch_size=10, seed=0, epoch=0, group_by_length=False, task_weights={"detect": 1.0, "vqa": 0.5})
    # only a family weight > 0 keeps the run: vqa 0 and spatial 2 train on the spatial questions
    only = [i for x in epoch_batches(s, [1] * 100, batch_size=10, seed=0, epoch=0, group_by_length=False,
                                     task_weights={"detect": 0.0, "vqa": 0.0, "vqa:spatial": 2.0}) for i in x]
    assert len(only) == 40 and {s[i].qtype for i in only} == {"spatial"}
    with pytest.raises(BadConfig, match="vqa:<question family>"):
        TrainConfig.from_dict({"family": "p", "base_model": "x", "output_dir": "o", "task_weights": {"vqa:": 1}})


def test_object_order_shuffled_per_epoch_and_deterministic():
    s = Sample(image="x", classes=["a"], boxes=[Box("a", i, i, i + 1, i + 1) for i in range(6)])

    def shuffled(e, i):
        return ordered_objects(s, "shuffle", 0, e, i).boxes

    orders = {tuple(b.x1 for b in shuffled(e, 7)) for e in range(6)}
    assert len(orders) > 1
    assert shuffled(2, 7) == shuffled(2, 7)
    assert sorted(b.x1 for b in shuffled(3, 7)) == list(range(6))
    v = Sample(image="x", task="vqa", question="q", answer="{box0} {box1}", boxes=s.boxes[:2])
    assert ordered_objects(v, "shuffle", 0, 1, 0) is v  # answers refer to boxes by position


def test_object_order_largest_first_and_as_given():
    sizes = [3, 9, 1, 9, 5]  # two equal areas keep their given order (stable sort)
    s = Sample(image="x", classes=["a"], boxes=[Box("a", k, 0, k + w, w) for k, w in enumerate(sizes)])
    got = ordered_objects(s, "largest_first", 0, 4, 2).boxes
    assert [b.x2 - b.x1 for b in got] == [9, 9, 5, 3, 1] and got[0].x1 == 1 and got[1].x1 == 3
    assert ordered_objects(s, "largest_first", 0, 5, 2).boxes == got  # the same every epoch
    assert ordered_objects(s, "as_given", 0, 4, 2) is s


# --------------------------------------------------------------------------- bad input, before any step

def test_bad_input_raises_before_any_step(pg, tmp_path):
    calls = []
    tr = samples(4)
    with pytest.raises(EmptyDataset):
        train(cfg_for(pg, tmp_path), [], progress=calls.append)
    with pytest.raises(BadTargetModules, match="qq_proj"):
        train(cfg_for(pg, tmp_path, target_modules=["q_proj", "qq_proj"]), tr, progress=calls.append)
    with pytest.raises(BadTargetModules, match="not_a_module"):
        train(cfg_for(pg, tmp_path, modules_to_save=["not_a_module"]), tr, progress=calls.append)
    with pytest.raises(ModelNotFound):
        train(cfg_for(pg, tmp_path, base_model=str(tmp_path / "missing")), tr, progress=calls.append)
    with pytest.raises(FamilyMismatch):
        train(cfg_for(pg, tmp_path, family="qwen2_vl"), tr, progress=calls.append)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(BadImage, match="broken.jpg"):
        train(cfg_for(pg, tmp_path), tr + [Sample(image=broken, classes=["a"])], progress=calls.append)
    with pytest.raises(EmptyDataset):
        train(cfg_for(pg, tmp_path, task_weights={"detect": 0.0, "vqa": 1.0}), tr, progress=calls.append)
    assert calls == []
    assert not (tmp_path / "run" / "adapter").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where the CUDA device is absent")
def test_qlora_where_bitsandbytes_cannot_run(pg, tmp_path):
    # A real condition, no monkeypatching: QLoRA asked for on a CUDA device this machine lacks.
    calls = []
    with pytest.raises(QuantizationUnavailable, match="cuda"):
        train(cfg_for(pg, tmp_path, method="qlora", device="cuda"), samples(4), progress=calls.append)
    assert calls == []


# --------------------------------------------------------------------------- freezing

def _part_names(family, model) -> dict[str, set[str]]:
    inner = model.get_base_model()
    named = {id(p): n for n, p in inner.named_parameters()}
    return {part: {named[id(p)] for p in getattr(family, f"{part}_params")(inner) if id(p) in named}
            for part in ("vision", "projector", "language")}


@pytest.mark.parametrize("frozen", [("vision",), ("language",), ("projector",), ("vision", "projector")])
def test_frozen_parts_get_no_gradient(pg, tmp_path, frozen):
    fam = get_family("paligemma")
    cfg = cfg_for(pg, tmp_path, target_modules=ALL_LINEAR_NAMES, dropout=0.0,
                  **{f"freeze_{p}": p in frozen for p in ("vision", "projector", "language")})
    model, proc = build_model(fam, cfg)
    model.train()
    batch = fam.build_batch(proc, samples(4), train=True)
    s, k = token_loss(model, batch)
    (s / k).backward()
    parts = _part_names(fam, model)
    grads = {n: p.grad for n, p in model.get_base_model().named_parameters()}
    for part, names in parts.items():
        lora = [n for n in names if "lora_" in n]
        if part in frozen:
            # Decision: no adapters are injected into a frozen part, and nothing in it has a gradient.
            assert lora == [], f"LoRA injected into frozen {part}"
            assert all(grads[n] is None or not grads[n].any() for n in names), part
        else:
            assert lora, f"no LoRA in unfrozen {part}"
            # LoRA B starts at zero, so A's gradient is zero at step 0; B's must be non-zero.
            assert all(grads[n] is not None and grads[n].abs().sum() > 0 for n in lora if "lora_B" in n), part
            assert all(grads[n] is None for n in names if "lora_" not in n)  # base weights stay frozen


def test_frozen_vision_unchanged_after_training(pg, tmp_path):
    fam = get_family("paligemma")
    base, _ = fam.load(str(pg))
    before = {n: p.detach().clone() for n, p in base.model.vision_tower.named_parameters()}
    cfg = cfg_for(pg, tmp_path, target_modules=ALL_LINEAR_NAMES, freeze_vision=True, max_steps=3,
                  learning_rate=1e-2)
    res = train(cfg, samples(8), progress=lambda p: None)
    model, _, _ = load_with_adapter(res.adapter_dir)
    after = dict(model.get_base_model().model.vision_tower.named_parameters())
    assert set(before) == set(after)  # no adapter modules were added in the vision tower
    assert all(torch.equal(before[n], after[n]) for n in before)


# --------------------------------------------------------------------------- scheduler / progress

def _lr_sequence(pg, tmp_path, **kw):
    seen = []
    train(cfg_for(pg, tmp_path, max_steps=10, batch_size=2, **kw), samples(8), progress=seen.append)
    return seen


def test_scheduler_warmup_then_decay(pg, tmp_path):
    lr = 1e-3
    seen = _lr_sequence(pg, tmp_path, learning_rate=lr, scheduler="cosine", warmup_ratio=0.2)
    got = [p.learning_rate for p in seen]
    # transformers' warmup: step i (0-based) of 2 warmup steps has lr * i/2, then cosine to 0 over 8.
    want = [lr * i / 2 for i in range(2)] + [lr * 0.5 * (1 + math.cos(math.pi * j / 8)) for j in range(8)]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-15)
    lin = [p.learning_rate for p in _lr_sequence(pg, tmp_path / "l", learning_rate=lr, scheduler="linear",
                                                 warmup_ratio=0.0)]
    assert lin == pytest.approx([lr * (10 - i) / 10 for i in range(10)])
    const = [p.learning_rate for p in _lr_sequence(pg, tmp_path / "c", learning_rate=lr, scheduler="constant",
                                                   warmup_ratio=0.3)]
    assert const == pytest.approx([0, lr / 3, 2 * lr / 3] + [lr] * 7)


def test_progress_reports_every_step(pg, tmp_path):
    seen = _lr_sequence(pg, tmp_path, grad_accum=2)
    assert [p.step for p in seen] == list(range(1, 11))
    assert all(p.total == 10 and math.isfinite(p.loss) and p.samples_per_s > 0 for p in seen)
    assert seen[-1].eta_s == 0 and all(p.eta_s >= 0 for p in seen)
    assert seen[0].epoch == 0 and seen[-1].epoch >= 1  # 8 samples / (2×2 per step) = 2 steps/epoch


def test_tqdm_bar_when_no_callback(pg, tmp_path, capsys):
    train(cfg_for(pg, tmp_path, max_steps=2), samples(4))
    assert "train paligemma" in capsys.readouterr().err


# --------------------------------------------------------------------------- checkpoints, resume, cancel

def _resume_cfg(pg, out, **kw):
    base = dict(max_steps=10, batch_size=3, grad_accum=2, warmup_ratio=0.2, dropout=0.2, learning_rate=5e-3,
                target_modules=ALL_LINEAR_NAMES, freeze_vision=False)
    return cfg_for(pg, out, **{**base, **kw})


def _adapter_tensors(d: Path):
    from safetensors.torch import load_file
    return load_file(Path(d) / "adapter_model.safetensors")


def test_resume_equals_straight_run(pg, tmp_path):
    data = samples(14)  # 14 / (3×2) is not whole: the stream crosses epochs mid-step
    straight = train(_resume_cfg(pg, tmp_path / "a"), data, progress=lambda p: None)
    assert straight.steps == 10 and len(straight.losses) == 10

    n = {"steps": 0}

    def after_five() -> bool:
        return n["steps"] >= 5

    def count(p):
        n["steps"] = p.step

    first = train(_resume_cfg(pg, tmp_path / "b"), data, progress=count, should_cancel=after_five)
    assert first.cancelled and first.steps == 5
    assert first.checkpoint_dir.name == "step-0000005" and (first.checkpoint_dir / "adapter").is_dir()
    second = train(_resume_cfg(pg, tmp_path / "b"), data, progress=lambda p: None, resume_from=tmp_path / "b" / "run")
    assert second.steps == 10 and not second.cancelled
    assert second.losses == pytest.approx(straight.losses, abs=1e-5)
    assert second.losses[:5] == first.losses
    a, b = _adapter_tensors(straight.adapter_dir), _adapter_tensors(second.adapter_dir)
    assert set(a) == set(b) and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_resume_refuses_a_different_run(pg, tmp_path):
    train(_resume_cfg(pg, tmp_path, checkpoint_every=2, max_steps=2), samples(6), progress=lambda p: None)
    with pytest.raises(BadConfig, match="rank=8"):
        train(_resume_cfg(pg, tmp_path, rank=8, max_steps=4), samples(6), progress=lambda p: None,
              resume_from=tmp_path / "run")


def test_periodic_checkpoints_resume_and_pruning(pg, tmp_path):
    data = samples(12)
    straight = train(_resume_cfg(pg, tmp_path / "a"), data, progress=lambda p: None)
    full = train(_resume_cfg(pg, tmp_path / "b", checkpoint_every=3, keep_checkpoints=2), data,
                 progress=lambda p: None)
    cks = sorted(p.name for p in (tmp_path / "b" / "run" / "checkpoints").iterdir())
    assert cks == ["step-0000006", "step-0000009"]
    resumed = train(_resume_cfg(pg, tmp_path / "c"), data, progress=lambda p: None,
                    resume_from=tmp_path / "b" / "run" / "checkpoints" / "step-0000006")
    assert full.losses == pytest.approx(straight.losses, abs=1e-5)
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-5)
    # each checkpoint carries its curve, so a resume can restore steps that were never reported
    saved = checkpoint_history(tmp_path / "b" / "run" / "checkpoints" / "step-0000006")
    assert [h["step"] for h in saved] == [1, 2, 3, 4, 5, 6]
    assert [h["loss"] for h in saved] == pytest.approx(full.losses[:6])
    assert all(h["lr"] is not None and h["lr"] >= 0 for h in saved)


def test_resume_from_a_checkpoint_saved_before_history_json(pg, tmp_path):
    """Older checkpoints kept the losses in trainer_state.pt and no learning rates: a resume from
    one continues exactly, and its later checkpoints mark the unknown rates None, never shifted."""
    import shutil

    data = samples(12)
    full = train(_resume_cfg(pg, tmp_path / "a", checkpoint_every=3, keep_checkpoints=4), data,
                 progress=lambda p: None)
    old = tmp_path / "old" / "step-0000006"
    shutil.copytree(tmp_path / "a" / "run" / "checkpoints" / "step-0000006", old)
    state = torch.load(old / "trainer_state.pt", weights_only=False)
    torch.save({**state, "losses": full.losses[:6], "val_losses": []}, old / "trainer_state.pt")
    (old / "history.json").unlink()
    assert checkpoint_history(old) == []
    resumed = train(_resume_cfg(pg, tmp_path / "c", checkpoint_every=3, keep_checkpoints=4), data,
                    progress=lambda p: None, resume_from=old)
    assert resumed.losses == pytest.approx(full.losses, abs=1e-5)
    after = checkpoint_history(tmp_path / "c" / "run" / "checkpoints" / "step-0000009")
    assert [h["lr"] is None for h in after] == [True] * 6 + [False] * 3
    assert [h["loss"] for h in after] == pytest.approx(full.losses[:9], abs=1e-5)


def test_resumed_history_restores_steps_saved_but_never_reported():
    from worker.runner import resumed_history

    stored = [{"step": s, "loss": 1.0, "lr": 0.1, "attempt": 1} for s in range(1, 13)]  # reported up to 12
    del stored[10:]  # ... but the writes after step 10 were throttled and lost with the worker
    saved = [{"step": s, "loss": 2.0, "lr": 0.2} for s in range(1, 16)]  # checkpoint at 15
    h = resumed_history(stored, saved, 15, attempt=1)
    assert [e["step"] for e in h] == list(range(1, 16))
    assert h[9]["loss"] == 1.0 and h[10] == {"step": 11, "loss": 2.0, "lr": 0.2, "attempt": 1}
    # reported beyond the checkpoint: cut back to it (those steps are trained again)
    assert [e["step"] for e in resumed_history(stored, saved[:5], 5, 1)] == [1, 2, 3, 4, 5]


def test_cancel_stops_at_next_step_and_keeps_checkpoint(pg, tmp_path):
    seen = []
    res = train(cfg_for(pg, tmp_path, max_steps=50, checkpoint_every=2), samples(8), progress=seen.append,
                should_cancel=lambda: len(seen) >= 3)
    assert res.cancelled and res.steps == 3 and len(seen) == 3
    assert res.checkpoint_dir == tmp_path / "run" / "checkpoints" / "step-0000003"
    assert (res.adapter_dir / "adapter_model.safetensors").is_file() and res.adapter_bytes > 0
    assert not (tmp_path / "run" / "adapter").exists()  # the final adapter is only written on completion


def test_dataloader_workers_give_same_losses(pg, tmp_path):
    a = train(cfg_for(pg, tmp_path / "a", max_steps=4), samples(8), progress=lambda p: None)
    b = train(cfg_for(pg, tmp_path / "b", max_steps=4, num_workers=1), samples(8), progress=lambda p: None)
    assert a.losses == pytest.approx(b.losses, abs=1e-6)


# --------------------------------------------------------------------------- mixed tasks, validation

def test_mixed_detect_and_vqa_in_one_run(pg, tmp_path):
    data = samples(6) + vqa_samples(6)
    res = train(cfg_for(pg, tmp_path, max_steps=6, task_weights={"detect": 1.0, "vqa": 0.5}), data,
                progress=lambda p: None)
    assert res.steps == 6 and all(math.isfinite(x) for x in res.losses)
    saved = TrainConfig.load(res.adapter_dir / CONFIG_NAME)
    assert saved.task_weights == {"detect": 1.0, "vqa": 0.5}


def test_length_grouping_in_training_cuts_padding(pg, tmp_path):
    data = shape_samples(48, seed=3, size=(56, 56), n_objects=(1, 8), min_frac=0.08, max_frac=0.15)
    eff = {}
    for grouped in (True, False):
        r = train(cfg_for(pg, tmp_path / str(grouped), max_steps=None, epochs=1, batch_size=8,
                          group_by_length=grouped), data, progress=lambda p: None)
        assert r.steps == 6 and r.tokens_total > 0
        eff[grouped] = r.padding_efficiency
    assert eff[True] >= 0.9 and eff[True] > eff[False] + 0.05


def test_epochs_mode_counts_optimizer_steps(pg, tmp_path):
    seen = []
    r = train(cfg_for(pg, tmp_path, max_steps=None, epochs=1.5, batch_size=2, grad_accum=2), samples(10),
              progress=seen.append)
    # 10 samples / batch 2 = 5 micro-batches per epoch; 1.5 epochs = 7.5 -> 4 steps of 2 micro-batches
    assert r.steps == 4 and seen[-1].total == 4


def test_validation_covers_the_whole_held_out_set(pg, tmp_path):
    fam = get_family("paligemma")
    val = samples(7, seed=9)  # 7 samples, batch 3: three batches, the last one short
    res = train(cfg_for(pg, tmp_path, max_steps=4, batch_size=3, eval_every=2), samples(6), val_samples=val,
                progress=lambda p: None)
    assert [s for s, _ in res.val_losses] == [2, 4]
    model, proc, _ = load_with_adapter(res.adapter_dir)
    # token-weighted over every sample, computed independently one sample at a time
    tot, cnt = 0.0, 0
    with torch.no_grad():
        for s in val:
            a, k = token_loss(model, fam.build_batch(proc, [s], train=True))
            tot, cnt = tot + float(a), cnt + k
    assert res.val_losses[-1][1] == pytest.approx(tot / cnt, abs=1e-4)
    assert validation_loss(model, fam, proc, val, batch_size=3) == pytest.approx(tot / cnt, abs=1e-4)
    first_batch_only = validation_loss(model, fam, proc, val[:3], batch_size=3)
    assert abs(first_batch_only - tot / cnt) > 1e-4


# --------------------------------------------------------------------------- QLoRA

@pytest.mark.parametrize("compute,quant", [("bfloat16", "nf4"), ("float32", "fp4")])
def test_qlora_4bit_compute_dtype_is_applied(pg, tmp_path, compute, quant):
    import bitsandbytes as bnb

    fam = get_family("paligemma")
    cfg = cfg_for(pg, tmp_path, method="qlora", bits=4, quant_type=quant, compute_dtype=compute)
    model, proc = build_model(fam, cfg)
    want = getattr(torch, compute)
    q = model.get_base_model().config.quantization_config
    q = q if isinstance(q, dict) else q.to_dict()
    assert q["load_in_4bit"] and q["bnb_4bit_quant_type"] == quant
    assert str(q["bnb_4bit_compute_dtype"]).replace("torch.", "") == compute
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and all(m.compute_dtype == want for m in layers)
    assert all(m.weight.dtype == torch.uint8 for m in layers)  # really quantised
    assert all(m.weight.quant_state.quant_type == quant for m in layers)
    model.train()  # as in training (bnb repacks weights on CPU in eval mode; see _keep_bnb_training_mode)
    # The matmul really runs in the compute dtype: the layer's output equals the dequantised
    # weight times the input computed in that dtype, and differs from the other dtype's result.
    layer = layers[0]
    w = bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state).float()
    x = torch.randn(5, w.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = layer(x).float()
    ref = {d: (x.to(d) @ w.to(d).T).float() for d in (torch.float32, torch.bfloat16)}
    other = torch.float32 if want == torch.bfloat16 else torch.bfloat16
    assert torch.allclose(out, ref[want], atol=1e-5)
    assert (out - ref[other]).abs().max() > 1e-3


@pytest.mark.parametrize("bits", [4, 8])
def test_qlora_trains(pg, tmp_path, bits):
    res = train(cfg_for(pg, tmp_path, method="qlora", bits=bits, max_steps=3, learning_rate=1e-2, eval_every=2),
                samples(6), val_samples=samples(3, seed=8), progress=lambda p: None)
    assert [s for s, _ in res.val_losses] == [2, 3] and all(math.isfinite(v) for _, v in res.val_losses)
    assert res.steps == 3 and all(math.isfinite(x) for x in res.losses)
    assert res.adapter_bytes > 0 and (res.adapter_dir / "adapter_model.safetensors").is_file()


# --------------------------------------------------------------------------- save / merge

def test_merge_gives_same_logits_as_base_plus_adapter(pg, tmp_path):
    fam = get_family("paligemma")
    res = train(cfg_for(pg, tmp_path, max_steps=5, learning_rate=2e-2, target_modules=ALL_LINEAR_NAMES,
                        freeze_vision=False, dropout=0.0), samples(8), progress=lambda p: None)
    size = sum(f.stat().st_size for f in res.adapter_dir.iterdir())
    assert res.adapter_bytes == size
    assert res.adapter_bytes < sum(f.stat().st_size for f in Path(pg).iterdir())  # adapter ≪ model
    out = merge(pg, res.adapter_dir, tmp_path / "merged", dtype="float32")  # exact comparison
    merged, proc = fam.load(str(out))
    with_adapter, _, _ = load_with_adapter(res.adapter_dir)
    base, _ = fam.load(str(pg))
    batch = {k: v for k, v in fam.build_batch(proc, samples(3, seed=4), train=True).items() if k != "labels"}
    with torch.no_grad():
        a, b, c = (m.eval()(**batch).logits for m in (merged, with_adapter, base))
    assert torch.allclose(a, b, atol=1e-4)
    assert (a - c).abs().max() > 1e-3  # the adapter really changed the model
    assert not any("lora" in n for n, _ in merged.named_parameters())


def test_merge_keeps_a_trained_lm_head(pg, tmp_path):
    fam = get_family("paligemma")
    res = train(cfg_for(pg, tmp_path, max_steps=3, learning_rate=2e-2, dropout=0.0, modules_to_save=["lm_head"]),
                samples(6), progress=lambda p: None)
    out = merge(pg, res.adapter_dir, tmp_path / "merged", dtype="float32")  # exact comparison
    merged, proc = fam.load(str(out))
    with_adapter, _, _ = load_with_adapter(res.adapter_dir)
    batch = {k: v for k, v in fam.build_batch(proc, samples(2, seed=4), train=True).items() if k != "labels"}
    with torch.no_grad():
        assert torch.allclose(merged.eval()(**batch).logits, with_adapter(**batch).logits, atol=1e-4)


def test_synth_boxes_match_drawn_pixels():
    s = shape_samples(5, seed=0, size=(64, 48), classes=DEFAULT_CLASSES[:1], n_objects=1, noise=0.0)
    for x in s:
        arr = np.asarray(x.image)
        b = x.boxes[0]
        red = (arr[..., 0] > 200) & (arr[..., 1] < 60)
        ys, xs = np.nonzero(red)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (b.x1, b.y1, b.x2, b.y2)
        assert isinstance(x.image, Image.Image) and x.image.size == (64, 48)


@pytest.mark.parametrize("family", ["paligemma", "qwen2_vl", "qwen2_5_vl", "smolvlm"])
def test_every_family_trains_resumes_and_merges(tiny_models, tmp_path, family):
    fam = get_family(family)
    data = shape_samples(6, seed=0, size=(64, 48), n_objects=(1, 3)) + vqa_samples(2)
    cfg = dict(family=family, base_model=str(tiny_models[family]), max_steps=4, batch_size=3, learning_rate=2e-2,
               rank=4, alpha=8, dropout=0.1, seed=1, target_modules="all-linear", freeze_vision=False,
               checkpoint_every=2)
    straight = train(TrainConfig(**cfg, output_dir=str(tmp_path / "a")), data, progress=lambda p: None)
    first = train(TrainConfig(**cfg, output_dir=str(tmp_path / "b")), data, progress=lambda p: None,
          should_cancel=lambda: (tmp_path / "b" / "checkpoints").exists())
    resumed = train(TrainConfig(**cfg, output_dir=str(tmp_path / "b")), data, progress=lambda p: None,
                    resume_from=tmp_path / "b")
    assert first.cancelled and first.steps == 2
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-5)
    out = merge(tiny_models[family], straight.adapter_dir, tmp_path / "merged", dtype="float32")
    merged, proc = fam.load(str(out))
    with_adapter, _, _ = load_with_adapter(straight.adapter_dir)
    batch = {k: v for k, v in fam.build_batch(proc, data[:2], train=True).items() if k != "labels"}
    with torch.no_grad():
        assert torch.allclose(merged.eval()(**batch).logits, with_adapter(**batch).logits, atol=1e-4)
