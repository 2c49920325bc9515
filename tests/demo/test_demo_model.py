"""The demo model's pre-training pieces, checked against numbers worked out by hand."""
from __future__ import annotations

import math

import pytest
import torch

from worker.training import LocationTargets
from worker.demo_model import PatchTargets, Recipe, answer_weights, build_base, curriculum, sincos, soft_token_loss
from worker.demo_recipe import code_fingerprint
from worker.types import Box, Sample

torch.set_num_threads(1)


def test_patch_targets_cover_share_and_box_on_a_4x4_grid():
    # a 40x40 image, 10 px patches; the box covers column 1 fully and half of column 2, row 0..1
    obj, reg, has = PatchTargets(4)([Box("kart", 10, 0, 25, 20)], 40, 40)
    grid = obj.view(4, 4)
    assert grid[0].tolist() == [0.0, 1.0, 0.5, 0.0] and grid[1].tolist() == [0.0, 1.0, 0.5, 0.0]
    assert grid[2:].sum() == 0
    # patch centres inside the box (edges included): x 15 and 25, y 5 and 15
    assert has.view(4, 4).nonzero().tolist() == [[0, 1], [0, 2], [1, 1], [1, 2]]
    assert reg[1].tolist() == pytest.approx([0.25, 0.0, 0.625, 0.5])


def test_patch_targets_smaller_box_wins_where_boxes_overlap():
    big, small = Box("kart", 0, 0, 40, 40), Box("kart", 10, 10, 20, 20)
    _, reg, has = PatchTargets(4)([big, small], 40, 40)
    assert has.all()
    assert reg[5].tolist() == pytest.approx([0.25, 0.25, 0.5, 0.5])  # centre (15, 15): the small box
    assert reg[0].tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0])


def test_soft_token_loss_is_cross_entropy_for_text_and_gaussian_for_locations():
    vocab, loc_ids = 20, torch.arange(4, 20)  # 16 "location" tokens: ids 4..19 are bins 0..15
    logits = torch.randn(1, 4, vocab)
    labels = torch.tensor([[-100, 2, 10, 3]])  # predicts: pos0 -> 2 (text), pos1 -> 10 (bin 6), pos2 -> 3
    got = soft_token_loss(logits, labels, LocationTargets(loc_ids.tolist(), 1.5))
    lp = torch.log_softmax(logits[0].float(), -1)
    w = torch.exp(-0.5 * ((torch.arange(16.0) - 6) / 1.5) ** 2)
    w = w / w.sum()
    want = (-lp[0, 2] - (w * lp[1, 4:]).sum() - lp[2, 3]) / 3
    assert float(got) == pytest.approx(float(want), rel=1e-5)
    # a tiny sigma is plain cross-entropy
    hard = soft_token_loss(logits, labels, LocationTargets(loc_ids.tolist(), 1e-3))
    assert float(hard) == pytest.approx(float((-lp[0, 2] - lp[1, 10] - lp[2, 3]) / 3), rel=1e-5)


def test_sincos_neighbours_are_close_and_far_bins_are_not():
    c = sincos(torch.arange(1024), 64)
    sim = c @ c.T / 32
    assert sim[500, 500] == pytest.approx(1.0)
    assert sim[500, 503] > 0.9 > sim[500, 600] and sim[500, 600] > sim[500, 900] - 0.5
    assert torch.equal(sim.argmax(1), torch.arange(1024))  # every bin's code is nearest to itself


def test_base_model_starts_with_the_position_codes(tmp_path):
    r = Recipe(image_size=64, patch=16, hidden=32, vocab=700)
    from worker.families import get_family

    model, proc = get_family("paligemma").load(str(build_base(tmp_path / "m", r)))
    emb = model.get_input_embeddings().weight
    ids = proc.tokenizer.convert_tokens_to_ids(["<loc0000>", "<loc0010>", "<loc0900>"])
    a, b, far = emb[ids[0]], emb[ids[1]], emb[ids[2]]
    assert torch.allclose(a[:16], a[16:])  # the same code in both halves (x and y)
    assert torch.cosine_similarity(a, b, 0) > torch.cosine_similarity(a, far, 0)
    proj = model.model.multi_modal_projector.linear
    assert torch.equal(proj.weight, torch.eye(32)) and not proj.bias.any()
    pe = model.model.vision_tower.embeddings.position_embedding.weight  # 4x4 patches
    # patches in one column share the x half; patches in one row share the y half
    assert torch.allclose(pe[1, :16], pe[5, :16]) and torch.allclose(pe[4, 16:], pe[5, 16:])
    assert not torch.allclose(pe[0, :16], pe[1, :16])


def test_curriculum_drops_empty_frames_and_orders_largest_first():
    s = [Sample(image="a", boxes=[Box("kart", 0, 0, 2, 2), Box("kart", 0, 0, 5, 5)]),
         Sample(image="b", boxes=[]),
         Sample(image="c", task="vqa", question="q", answer="a", qtype="count_total")]
    out = curriculum(s)
    assert len(out) == 2 and [b.x2 for b in out[0].boxes] == [5, 2] and out[1].task == "vqa"
    assert math.isclose(s[0].boxes[0].x2, 2)  # the input is not changed


def test_curriculum_drops_boxes_too_small_to_see_at_the_models_input():
    from PIL import Image

    im = Image.new("RGB", (300, 200))
    frame = Sample(image=im, boxes=[Box("kart", 0, 0, 3, 3), Box("kart", 10, 10, 40, 50), Box("kart", 50, 50, 59, 52)])
    dot = Sample(image=im, boxes=[Box("kart", 0, 0, 3, 3)])
    # at 224 px a 300 px wide frame shrinks 0.75x: 3 px -> 2.2 px (dropped), 9 px -> 6.7 px (kept)
    out = curriculum([frame, dot], Recipe(image_size=224, min_box=6))
    assert len(out) == 1 and [b.x2 - b.x1 for b in out[0].boxes] == [30, 9]  # a frame left empty is dropped
    assert len(curriculum([frame, dot], Recipe(image_size=224, min_box=0))[0].boxes) == 3  # 0: all kept


def test_answer_weights_draw_each_answer_of_a_balanced_template_equally_often():
    def q(template: str, answer: str) -> Sample:
        return Sample(image="", task="vqa", question="?", answer=answer, qtype=template)

    qs = [q("ego_front_behind", "in front")] * 6 + [q("ego_front_behind", "behind")] * 2 + [q("count_total", "1")] * 3
    w = answer_weights(qs, ("ego_front_behind",))
    # 8 front/behind questions keep a total weight of 8, half of it on each answer; counting is left alone
    assert w[:6] == [8 / (2 * 6)] * 6 and w[6:8] == [8 / (2 * 2)] * 2 and w[8:] == [1.0] * 3
    assert math.isclose(sum(w[:6]), sum(w[6:8])) and math.isclose(sum(w[:8]), 8)
    assert answer_weights(qs, ()) is None  # nothing balanced: the plain shuffled stream


def test_code_fingerprint_ignores_docstrings_and_comments_not_code():
    a = 'def f(x):\n    """Old words."""\n    return x + 1  # why\n'
    b = 'def f(x):\n    """New, longer words\n    on two lines."""\n    return x + 1\n'
    c = 'def f(x):\n    """Old words."""\n    return x + 2\n'
    assert code_fingerprint(a) == code_fingerprint(b) != code_fingerprint(c)
    assert code_fingerprint('"""Only a docstring."""\n') == code_fingerprint("")
