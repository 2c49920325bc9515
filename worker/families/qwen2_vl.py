"""Qwen2-VL: chat prompt, boxes as `<|object_ref_start|>label<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`
with 0..999 normalised coordinates (x / size * 1000); only the assistant turn is trained."""
from __future__ import annotations

from functools import cache

from worker.codecs import decode_qwen2, encode_qwen2, region_qwen2
from worker.families.base import Family

SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"


@cache
def image_only_processor(base):
    """`base` (Qwen2VLProcessor / Qwen2_5_VLProcessor) without its video processor: that one needs
    torchvision, which does not import beside the CPU torch here. Only the constructor changes;
    the attribute list comes from the __init__ signature, so save/load handle image + tokenizer."""
    from transformers.processing_utils import ProcessorMixin

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    # Same class name as the base, so the saved processor_config.json names the real
    # processor class exactly as a hub folder does.
    return type(base.__name__, (base,), {"__init__": __init__, "__module__": __name__})


class Qwen2VL(Family):
    name = "qwen2_vl"
    model_types = ("qwen2_vl",)
    stop_tokens = ("<|im_end|>", "<|endoftext|>")
    processor_base = "Qwen2VLProcessor"
    # Run setting `max_pixels`: caps the processor's longest_edge (pixels of the model input). The
    # hub's Qwen2.5-VL processor allows 12.8 MP (~16k image tokens); None keeps the processor's.

    def configure(self, processor):
        ip = processor.image_processor
        size = getattr(ip, "size", None)
        if self.pixel_cap and size is not None and getattr(size, "longest_edge", None):
            if size.longest_edge > self.pixel_cap:  # a cap: never raises the processor's own bound
                size.longest_edge = self.pixel_cap
                size.shortest_edge = min(size.shortest_edge or self.pixel_cap, self.pixel_cap)

    def get_model_class(self):
        from transformers import Qwen2VLForConditionalGeneration
        return Qwen2VLForConditionalGeneration

    def load_processor(self, path):
        import transformers
        return image_only_processor(getattr(transformers, self.processor_base)).from_pretrained(path)

    def detection_prompt(self, classes):
        return "Detect all objects of these classes and output their bounding boxes: " + ", ".join(classes)

    def chat_prompt(self, instruction):
        return (f"{SYSTEM}<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{instruction}<|im_end|>\n"
                "<|im_start|>assistant\n")

    def answer_end(self, processor):
        return "<|im_end|>"

    def encode_boxes(self, boxes, width, height):
        return encode_qwen2(boxes, width, height)

    def encode_region(self, box, width, height):
        return region_qwen2(box, width, height)

    def decode_spans(self, text, width, height, classes):
        return decode_qwen2(text, width, height, classes)

    def vision_model(self, model):
        return model.model.visual

    def projector(self, model):
        return model.model.visual.merger

    def vision_params(self, model):
        merger = {id(p) for p in self.projector(model).parameters()}
        return (p for p in model.model.visual.parameters() if id(p) not in merger)
