"""TrainConfig.loc_sigma: soft targets for location tokens (a Gaussian over neighbouring bins), the
loss the demo base is pre-trained with; refused up front for families that write coordinates as text."""
from __future__ import annotations

import math

import pytest
import torch

from backend.errors import InvalidInput
from backend.runs import parse_config
from worker.families import get_family
from worker.synth import shape_samples
from worker.train_config import BadConfig, TrainConfig
from worker.training import LocationTargets, build_model, token_loss, train

torch.set_num_threads(1)


def test_a_near_miss_costs_less_than_a_far_one_only_with_soft_targets():
    ids = list(range(10, 1034))  # bins 0..1023 are token ids 10..1033
    target = torch.tensor([10 + 500])

    def peaked(b: int) -> torch.Tensor:
        logits = torch.full((1, 1034), -10.0)
        logits[0, 10 + b] = 10.0
        return logits

    soft = LocationTargets(ids, 6.0)
    assert float(soft.loss(peaked(503), target)) < float(soft.loss(peaked(0), target)) - 1.0
    hard = torch.nn.functional.cross_entropy
    assert float(hard(peaked(503), target)) == pytest.approx(float(hard(peaked(0), target)))
    # text tokens keep plain cross-entropy
    text = torch.randn(2, 1034)
    assert float(soft.loss(text, torch.tensor([3, 7]))) == pytest.approx(
        float(hard(text, torch.tensor([3, 7]), reduction="sum")), rel=1e-5)


def test_training_with_loc_sigma_optimises_the_soft_loss(tiny_models, tmp_path):
    fam = get_family("paligemma")
    data = shape_samples(4, seed=0, size=(56, 56), n_objects=(1, 2), min_frac=0.15, max_frac=0.35)
    cfg = TrainConfig(family="paligemma", base_model=str(tiny_models["paligemma"]), output_dir=str(tmp_path / "run"),
                      max_steps=1, batch_size=4, rank=4, alpha=8, dropout=0.0, object_order="as_given", loc_sigma=6.0)
    model, proc = build_model(fam, cfg)  # LoRA B starts at zero: the base's outputs
    model.eval()
    batch = fam.build_batch(proc, data, train=True)
    soft = LocationTargets(proc.tokenizer.convert_tokens_to_ids(fam.location_tokens()), 6.0)
    with torch.no_grad():
        s_soft, n = token_loss(model, batch, soft)
        s_hard, _ = token_loss(model, batch)
    assert not math.isclose(float(s_soft), float(s_hard), rel_tol=1e-3)  # the targets hold location tokens
    res = train(cfg, data)
    assert res.losses[0] == pytest.approx(float(s_soft) / n, rel=1e-4)


def test_a_family_without_location_tokens_refuses_loc_sigma_before_loading(tmp_path):
    cfg = TrainConfig(family="qwen2_vl", base_model=str(tmp_path / "no-such-model"), output_dir=str(tmp_path / "o"),
                      loc_sigma=6.0)
    data = shape_samples(2, seed=0, size=(56, 56))
    with pytest.raises(BadConfig, match="loc_sigma=6.0: family qwen2_vl writes box coordinates as text"):
        train(cfg, data)  # BadConfig, not ModelNotFound: nothing was loaded
    with pytest.raises(InvalidInput, match="config.loc_sigma: family qwen2_vl"):
        parse_config("train", {"family": "qwen2_vl", "base_model": "org/name", "loc_sigma": 6})
    assert parse_config("train", {"family": "paligemma", "base_model": "org/name", "loc_sigma": 6}).loc_sigma == 6
    assert parse_config("train", {"family": "qwen2_vl", "base_model": "org/name", "loc_sigma": 0}).loc_sigma == 0


@pytest.mark.parametrize("bad", [-1, 2000, float("nan"), float("inf"), True])
def test_loc_sigma_out_of_range_is_refused(tmp_path, bad):
    with pytest.raises(BadConfig, match="loc_sigma"):
        TrainConfig.from_dict(dict(family="paligemma", base_model="m", output_dir="o", loc_sigma=bad))
    if isinstance(bad, int) and not isinstance(bad, bool):  # JSON has no nan / inf; the API reads true as 1
        with pytest.raises(InvalidInput, match="config.loc_sigma"):
            parse_config("train", {"family": "paligemma", "base_model": "org/name", "loc_sigma": bad})
