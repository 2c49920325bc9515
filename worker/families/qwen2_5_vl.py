"""Qwen2.5-VL: JSON `[{"bbox_2d": [x1, y1, x2, y2], "label": "kart"}]` in absolute pixels of the
*resized* model input (smart_resize: sides multiples of patch*merge = 28); rescaled both ways."""
from __future__ import annotations

from worker.codecs import decode_qwen25, encode_qwen25, region_qwen25, smart_resize
from worker.families.qwen2_vl import Qwen2VL


class Qwen25VL(Qwen2VL):
    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    processor_base = "Qwen2_5_VLProcessor"

    def __init__(self, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280, factor: int = 28):
        # the hub processor's defaults; load()/build_batch() replace them with the processor's own
        self.min_pixels, self.max_pixels, self.factor = min_pixels, max_pixels, factor

    def get_model_class(self):
        from transformers import Qwen2_5_VLForConditionalGeneration
        return Qwen2_5_VLForConditionalGeneration

    def configure(self, processor):
        super().configure(processor)  # the max_pixels cap first: the codec reads the capped bound
        ip = processor.image_processor
        size = getattr(ip, "size", None) or {}
        self.min_pixels = size.get("shortest_edge", getattr(ip, "min_pixels", None) or self.min_pixels)
        self.max_pixels = size.get("longest_edge", getattr(ip, "max_pixels", None) or self.max_pixels)
        self.factor = ip.patch_size * ip.merge_size

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(height, width) of the model input for an original image of width x height."""
        return smart_resize(height, width, self.factor, self.min_pixels, self.max_pixels)

    def detection_prompt(self, classes):
        return ("Locate every object of these classes and output bbox coordinates in JSON format: "
                + ", ".join(classes))

    def encode_boxes(self, boxes, width, height):
        return encode_qwen25(boxes, width, height, self.resized_size(width, height))

    def encode_region(self, box, width, height):
        return region_qwen25(box, width, height, self.resized_size(width, height))

    def target_text(self, sample, width, height):
        if sample.task == "detect":  # the ```json block the Instruct checkpoint emits
            return encode_qwen25(sample.boxes, width, height, self.resized_size(width, height), fenced=True)
        return super().target_text(sample, width, height)

    def decode_spans(self, text, width, height, classes):
        return decode_qwen25(text, width, height, classes, self.resized_size(width, height))
