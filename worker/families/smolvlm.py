"""SmolVLM / Idefics3: no location tokens; boxes as plain text `label [x1, y1, x2, y2]` joined by
`; `, coordinates normalised to 0..1000 (see worker/codecs.py for why), multi-word labels allowed."""
from __future__ import annotations

from worker.codecs import decode_plain, encode_plain, region_plain
from worker.families.base import Family


class SmolVLM(Family):
    name = "smolvlm"
    model_types = ("idefics3", "smolvlm")
    stop_tokens = ("<end_of_utterance>",)

    def get_model_class(self):
        from transformers import AutoModelForImageTextToText
        return AutoModelForImageTextToText  # Idefics3ForConditionalGeneration or SmolVLMForConditionalGeneration

    def detection_prompt(self, classes):
        return ("Detect all objects of these classes and give each as label [x1, y1, x2, y2] with coordinates "
                "from 0 to 1000: " + ", ".join(classes))

    def chat_prompt(self, instruction):
        # SmolVLM's chat template for one user turn with one image, up to where the answer starts
        return f"<|im_start|>User:<image>{instruction}<end_of_utterance>\nAssistant:"

    def target_text(self, sample, width, height):
        return " " + super().target_text(sample, width, height)  # the template puts a space after "Assistant:"

    def answer_end(self, processor):
        return "<end_of_utterance>"

    def encode_boxes(self, boxes, width, height):
        return encode_plain(boxes, width, height)

    def encode_region(self, box, width, height):
        return region_plain(box, width, height)

    def decode_spans(self, text, width, height, classes):
        return decode_plain(text, width, height, classes)

    def vision_model(self, model):
        return model.model.vision_model

    def projector(self, model):
        return model.model.connector

    def language_model(self, model):
        return model.model.text_model
