"""PaliGemma / PaliGemma 2: `detect a ; b`, targets `<locY1><locX1><locY2><locX2> label` joined by ` ; `."""
from __future__ import annotations

import torch

from worker.codecs import LOC_TOKENS, decode_paligemma, encode_paligemma, region_paligemma
from worker.families.base import Family, load_images
from worker.types import Sample


class PaliGemma(Family):
    name = "paligemma"
    model_types = ("paligemma",)

    def get_model_class(self):
        from transformers import PaliGemmaForConditionalGeneration
        return PaliGemmaForConditionalGeneration

    def detection_prompt(self, classes):
        return "detect " + " ; ".join(classes)

    def vqa_prompt(self, question):
        return "answer en " + question

    def encode_boxes(self, boxes, width, height):
        return encode_paligemma(boxes, width, height)

    def encode_region(self, box, width, height):
        return region_paligemma(box, width, height)

    def decode_spans(self, text, width, height, classes):
        return decode_paligemma(text, width, height, classes)

    def location_tokens(self):
        return LOC_TOKENS

    def build_batch(self, processor, samples: list[Sample], *, train: bool) -> dict[str, torch.Tensor]:
        images = load_images(samples)
        # An explicit leading <image>: the processor then inserts bos after it and "\n" after the
        # prompt, which is the big_vision prefix layout.
        prompts = ["<image>" + self.prompt(s) for s in samples]
        kw = dict(images=images, text=prompts, return_tensors="pt", padding="longest")
        if train:
            # suffix= gives labels (-100 on the prefix) and token_type_ids (1 on the suffix, so the
            # prefix keeps full attention); the processor appends eos to each suffix.
            kw["suffix"] = [self.target_text(s, im.width, im.height) for s, im in zip(samples, images)]
            enc = processor(**kw, padding_side="right")
            enc["labels"][enc["attention_mask"] == 0] = -100
        else:
            enc = processor(**kw, padding_side="left")
            enc.pop("labels", None)
        return dict(enc)
