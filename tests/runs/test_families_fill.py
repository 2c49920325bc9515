"""Families fill `{boxN}` placeholders in questions as in answers; the backend's torch-free family
table agrees with the worker's registry."""
from __future__ import annotations

import pytest
from PIL import Image

from backend.runs import FAMILY_MODEL_TYPES, LOCATION_TOKEN_FAMILIES
from worker.families import REGISTRY, get_family
from worker.types import Box, Sample


def test_backend_family_table_matches_the_registry():
    assert FAMILY_MODEL_TYPES == {name: cls.model_types for name, cls in REGISTRY.items()}
    assert set(LOCATION_TOKEN_FAMILIES) == {name for name, cls in REGISTRY.items() if cls().location_tokens()}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_question_placeholders_are_filled_in_the_family_syntax(name, tmp_path):
    fam = get_family(name)
    path = tmp_path / "im.png"
    Image.new("RGB", (300, 200)).save(path)
    box = Box("kart", 30, 40, 90, 120)
    s = Sample(image=path, task="vqa", question="Is {box0} left of the ego kart?", answer="yes", boxes=[box])
    prompt = fam.prompt(s)
    assert "{box0}" not in prompt
    # a box in a question carries no label (the label is often the answer)
    assert fam.encode_region(box, 300, 200) in prompt and fam.encode_boxes([box], 300, 200) not in prompt
    assert fam.prompt(Sample(image=Image.open(path), task="vqa", question="Is {box0} here?", boxes=[box])) == \
        fam.vqa_prompt(f"Is {fam.encode_region(box, 300, 200)} here?")
    # no placeholder: the question is left as it is (and the image is not opened)
    assert fam.prompt(Sample(image=tmp_path / "missing.png", task="vqa", question="How many karts?")) == \
        fam.vqa_prompt("How many karts?")
