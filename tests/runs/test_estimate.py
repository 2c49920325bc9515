"""Pre-flight memory estimate (issue 10): the API's dry run, and the worker's refusal."""
from __future__ import annotations

import pytest

from tests.runs.conftest import config
from worker.estimate import DoesNotFit, check_fits, estimate
from worker.families import get_family


def test_dry_run_returns_the_estimate_and_queues_nothing(client, project, tiny_paligemma):
    body = {"kind": "train", "config": config(tiny_paligemma, device=None), "dry_run": True}
    r = client.post(f"/api/projects/{project}/runs", json=body)
    assert r.status_code == 201, r.text
    est = r.json()
    assert est["estimate_gb"] > 0 and {"weights", "lora", "activations", "logits", "eval"} <= set(est["parts"])
    assert set(est["params"]) == {"vision", "projector", "language"} and all(est["params"].values())
    assert "device_gb" in est and est["fits"] in (None, True, False)
    assert client.get(f"/api/projects/{project}/runs").json()["total"] == 0
    # more rank / batch: a larger estimate
    body["config"].update(rank=64, batch_size=16)
    assert client.post(f"/api/projects/{project}/runs", json=body).json()["estimate_gb"] > est["estimate_gb"]
    bad = client.post(f"/api/projects/{project}/runs", json={**body, "config": {**body["config"], "rank": 0}})
    assert bad.status_code == 422 and "rank" in bad.text


def _qwen7b():
    import transformers

    return transformers.Qwen2_5_VLConfig(
        text_config=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
        vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                           fullatt_block_indexes=[7, 15, 23, 31]), tie_word_embeddings=False)


def test_a_7b_qlora_run_fits_24gb_and_lora_fp32_does_not():
    fam = get_family("qwen2_5_vl")
    cfg = _qwen7b()
    q = estimate(fam, cfg, method="qlora", bits=4, compute_dtype="bfloat16", device="cuda", batch_size=2,
                 max_pixels=1280 * 28 * 28, image_size=(1280, 960), device_gb=24)
    assert 7.0 < q["parts"]["weights"] < 9.0  # ~3.8 GB of 4-bit Linears + 4.4 GB fp32 embeddings and head
    assert 7.0e9 < sum(q["params"].values()) < 9.0e9 and q["fits"] is True
    full = estimate(fam, cfg, method="lora", compute_dtype="float32", device="cuda", batch_size=2,
                    image_size=(1280, 960), device_gb=24)
    assert full["fits"] is False and full["parts"]["weights"] > 28
    with pytest.raises(DoesNotFit, match=r"exceeds cuda's 24.0 GB"):
        check_fits(full, "cuda")
    check_fits(q, "cuda")  # no error
