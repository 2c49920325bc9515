"""What every model family provides: loading, prompts, box codec, batch building, parameter groups.

Subclasses set `name`, `model_types`, `model_class`, the prompt templates and the codec; the
generic `build_batch` here (prompt through the processor, answer tokens appended, labels -100
except the answer) serves the chat-style families; PaliGemma overrides it to use `suffix=`.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch

from worker.codecs import Span, fill_answer
from worker.types import BadImage, Box, FamilyMismatch, ModelNotFound, QuantizationUnavailable, Sample

IGNORE = -100
TOKEN_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def as_dtype(d) -> torch.dtype:
    if isinstance(d, torch.dtype):
        return d
    try:
        return DTYPES[str(d).replace("torch.", "")]
    except KeyError:
        raise ValueError(f"unknown dtype {d!r}; use one of {sorted(DTYPES)}") from None


def read_model_type(path: str) -> str | None:
    """config.model_type of a local folder (None for a hub id that is not a local folder)."""
    p = Path(path)
    if p.is_dir():
        cfg = p / "config.json"
        if not cfg.is_file():
            raise ModelNotFound(f"model folder {path} has no config.json")
        return json.loads(cfg.read_text()).get("model_type")
    if p.is_absolute() or path.startswith((".", "~")) or path.count("/") != 1:
        raise ModelNotFound(f"model folder {path} does not exist (and it is not a hub id 'org/name')")
    return None


def load_images(samples: list[Sample]):
    images = []
    for s in samples:
        try:
            images.append(s.load_image())
        except Exception as e:  # PIL raises several types (UnidentifiedImageError, OSError, ...)
            name = s.image if not hasattr(s.image, "size") else f"<in-memory image {s.image_id}>"
            raise BadImage(f"image {name} (id {s.image_id}) could not be decoded: {e}") from e
    return images


def sample_size(sample: Sample) -> tuple[int, int]:
    """(width, height) of a sample's image; a file is opened for its header only."""
    if hasattr(sample.image, "size") and not isinstance(sample.image, (str, Path)):
        return tuple(sample.image.size)
    from PIL import Image

    try:
        with Image.open(sample.image) as im:
            return im.size
    except Exception as e:  # noqa: BLE001 - PIL raises several types
        raise BadImage(f"image {sample.image} (id {sample.image_id}) could not be read: {e}") from e


class Family:
    name: str = ""
    model_types: tuple[str, ...] = ()
    model_class = None  # transformers class, imported lazily by subclasses
    stop_tokens: tuple[str, ...] = ()  # extra tokens that end generation (besides tokenizer.eos)
    pixel_cap: int | None = None  # run setting max_pixels; only the Qwen families resize by pixel count

    # ------------------------------------------------------------------ loading
    def load(self, path: str, *, dtype=torch.float32, quantization: dict | None = None, device="cpu"):
        path = str(path)
        model_type = read_model_type(path)
        if model_type is None:  # hub id: read its config before fetching any weights
            from transformers import AutoConfig
            try:
                model_type = AutoConfig.from_pretrained(path).model_type
            except (OSError, ValueError) as e:
                raise ModelNotFound(f"model {path} could not be found: {e}") from e
        if model_type not in self.model_types:
            raise FamilyMismatch(f"model {path} has config.model_type {model_type!r}, which is not family "
                                 f"{self.name!r} (accepts {', '.join(self.model_types)})")
        kwargs: dict = {"dtype": as_dtype(dtype)}
        if quantization:
            kwargs["quantization_config"] = self.bnb_config(quantization)
            kwargs["device_map"] = {"": device}
        try:
            processor = self.load_processor(path)
            model = self.get_model_class().from_pretrained(path, **kwargs)
        except OSError as e:
            raise ModelNotFound(f"model {path} could not be loaded: {e}") from e
        if model.config.model_type not in self.model_types:
            raise FamilyMismatch(f"model {path} is a {model.config.model_type!r}, not family {self.name!r}")
        if not quantization:
            model.to(device)
        self.configure(processor)
        return model, processor

    @staticmethod
    def bnb_config(q: dict):
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError as e:
            raise QuantizationUnavailable(f"bitsandbytes is not importable: {e}") from e
        bits = int(q.get("bits", 4))
        compute = as_dtype(q.get("compute_dtype", "float32"))
        if bits == 4:
            # bnb_4bit_compute_dtype spelled exactly: a misspelled kwarg is silently ignored.
            return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=q.get("quant_type", "nf4"),
                                      bnb_4bit_compute_dtype=compute,
                                      bnb_4bit_use_double_quant=bool(q.get("double_quant", False)))
        if bits == 8:
            return BitsAndBytesConfig(load_in_8bit=True)
        raise QuantizationUnavailable(f"quantization bits must be 4 or 8, got {bits}")

    def get_model_class(self):
        return self.model_class

    def load_processor(self, path: str):
        from transformers import AutoProcessor
        return AutoProcessor.from_pretrained(path)

    def configure(self, processor) -> None:
        """Copy codec-relevant processor settings onto this instance (Qwen2.5-VL's resize bounds)."""

    # ------------------------------------------------------------------ prompts and codec
    def detection_prompt(self, classes: list[str]) -> str:
        raise NotImplementedError

    def vqa_prompt(self, question: str) -> str:
        return question

    def encode_boxes(self, boxes: list[Box], width: int, height: int) -> str:
        raise NotImplementedError

    def encode_region(self, box: Box, width: int, height: int) -> str:
        """A box inside a question, without its label ("what is in the box ...?" must not contain
        the answer)."""
        raise NotImplementedError

    def decode_spans(self, text: str, width: int, height: int, classes: list[str]) -> list[Span]:
        raise NotImplementedError

    def location_tokens(self) -> list[str] | None:
        """The vocabulary tokens that name box coordinates, in bin order (PaliGemma's 1024
        <locNNNN>); None where coordinates are written as text digits. TrainConfig.loc_sigma needs them."""
        return None

    def decode_boxes(self, text: str, width: int, height: int, classes: list[str]) -> list[Box]:
        try:
            return [s.box for s in self.decode_spans(text, width, height, classes)]
        except Exception:  # decoders are written not to raise; this is the belt to those braces
            return []

    def target_text(self, sample: Sample, width: int, height: int) -> str:
        if sample.task == "detect":
            return self.encode_boxes(sample.boxes, width, height)
        return fill_answer(sample.answer or "", sample.boxes, lambda b: self.encode_boxes(b, width, height))

    def prompt(self, sample: Sample) -> str:
        """Task instruction (without chat wrapping). A question's `{box0}` ... placeholders (region
        and spatial questions name boxes too) are filled in this family's box syntax without labels
        (encode_region): the box's label is often the answer."""
        if sample.task == "detect":
            return self.detection_prompt(sample.classes)
        question = sample.question or ""
        if "{box" in question and sample.boxes:
            width, height = sample_size(sample)
            question = fill_answer(question, sample.boxes, lambda b: self.encode_region(b[0], width, height))
        return self.vqa_prompt(question)

    # ------------------------------------------------------------------ batches
    def chat_prompt(self, instruction: str) -> str:
        """Full prompt text including image placeholder and chat wrapping, ending where the answer starts."""
        raise NotImplementedError

    def answer_end(self, processor) -> str:
        """Text appended to every training target: the token generation should stop on."""
        return processor.tokenizer.eos_token

    def stop_token_ids(self, processor) -> list[int]:
        tok = processor.tokenizer
        ids = [tok.eos_token_id] + [tok.convert_tokens_to_ids(t) for t in self.stop_tokens]
        return sorted({i for i in ids if i is not None and i != tok.unk_token_id})

    def processor_kwargs(self) -> dict:
        return {}

    def build_batch(self, processor, samples: list[Sample], *, train: bool) -> dict[str, torch.Tensor]:
        self.configure(processor)
        images = load_images(samples)
        prompts = [self.chat_prompt(self.prompt(s)) for s in samples]
        enc = processor(images=[[im] for im in images], text=prompts, return_tensors="pt", padding=True,
                        padding_side="left", **self.processor_kwargs())
        enc = dict(enc)
        if not train:
            return enc
        tok = processor.tokenizer
        targets = [self.target_text(s, im.width, im.height) + self.answer_end(processor)
                   for s, im in zip(samples, images)]
        target_ids = [tok(t, add_special_tokens=False)["input_ids"] for t in targets]
        return self._append_targets(enc, target_ids, tok.pad_token_id)

    @staticmethod
    def _append_targets(enc: dict, target_ids: list[list[int]], pad_id: int) -> dict:
        """Strip the prompt's left padding, append the answer tokens, right-pad, and build labels
        that are -100 everywhere but the answer (so only answer tokens are trained)."""
        mask = enc["attention_mask"].bool()
        rows = []
        for i, tgt in enumerate(target_ids):
            keep = mask[i]
            row = {k: enc[k][i][keep] for k in TOKEN_KEYS if k in enc}
            t = torch.tensor(tgt, dtype=enc["input_ids"].dtype)
            row["input_ids"] = torch.cat([row["input_ids"], t])
            row["attention_mask"] = torch.cat([row["attention_mask"], torch.ones_like(t)])
            for k in ("mm_token_type_ids", "token_type_ids"):
                if k in row:  # answer tokens are text (mm type 0); PaliGemma's suffix type is 1
                    row[k] = torch.cat([row[k], torch.full_like(t, 1 if k == "token_type_ids" else 0)])
            row["labels"] = torch.cat([torch.full((int(keep.sum()),), IGNORE, dtype=t.dtype), t])
            rows.append(row)
        n = max(len(r["input_ids"]) for r in rows)
        out = {k: v for k, v in enc.items() if k not in TOKEN_KEYS}
        fill = {"input_ids": pad_id, "attention_mask": 0, "labels": IGNORE, "mm_token_type_ids": 0,
                "token_type_ids": 0}
        for k in rows[0]:
            out[k] = torch.stack([torch.cat([r[k], torch.full((n - len(r[k]),), fill[k], dtype=r[k].dtype)])
                                  for r in rows])
        return out

    # ------------------------------------------------------------------ parameter groups
    def lora_target_modules(self, model) -> list[str]:
        """'all-linear' for this family: every nn.Linear of the language model, the vision tower and
        the projector, except the LM head (training.resolve_target_modules then drops the ones in
        frozen parts, so `freeze_vision: false` trains the vision tower through LoRA, like
        ms-swift's --freeze_vit false)."""
        parts = (self.language_model(model), self.vision_model(model), self.projector(model))
        ids = {id(m) for part in parts for m in part.modules()}
        # Full module names, not suffixes: a suffix such as "q_proj" would hit every part.
        return [n for n, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and id(m) in ids and not n.endswith("lm_head")]

    def language_model(self, model):
        return model.model.language_model

    def vision_model(self, model):
        return model.model.vision_tower

    def projector(self, model):
        return model.model.multi_modal_projector

    def vision_params(self, model) -> Iterator[torch.nn.Parameter]:
        return self.vision_model(model).parameters()

    def projector_params(self, model) -> Iterator[torch.nn.Parameter]:
        return self.projector(model).parameters()

    def language_params(self, model) -> Iterator[torch.nn.Parameter]:
        # lm_head is tied to the embeddings in these models; include it when it is a separate tensor.
        seen = set()
        for p in list(self.language_model(model).parameters()) + list(model.lm_head.parameters()):
            if id(p) not in seen:
                seen.add(id(p))
                yield p
