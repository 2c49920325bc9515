"""Tiny randomly initialised models of each family, built offline with the family's real classes.

Each builder trains a small BPE tokenizer locally (the `tokenizers` library via
`train_new_from_iterator`, starting from the family's own tokenizer class so the pre-tokenizer /
normaliser / decoder are the real ones), adds the family's special tokens, builds the real config /
model / processor classes at toy sizes and `save_pretrained`s them, so `Family.load()` loads the
folder exactly like a hub model. A few MB each; nothing is downloaded.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import torch

CLASS_WORDS = ["kart", "person", "car", "banana", "bomb", "nitro", "pickup", "projectile", "ball",
               "red", "green", "blue", "yellow", "square", "circle", "triangle", "traffic light",
               "tux", "puffy", "gnu", "sara", "konqi", "wilber", "ego", "track", "lighthouse"]
QUESTION_WORDS = ["what", "which", "where", "how", "many", "is", "are", "the", "of", "left", "right",
                  "front", "behind", "in", "to", "a", "an", "there", "detect", "count", "yes", "no",
                  "image", "picture", "describe", "box", "boxes", "answer", "question", "user",
                  "assistant", "system", "you", "helpful", "race", "position", "leads", "who", "name"]
PUNCT = ["(", ")", "[", "]", "{", "}", ",", ";", ":", ".", "?", "!", "\"", "'", "-", "_", "/", "\n",
         "<", ">", "|", "=", "+", "*", "#"]


def corpus() -> list[str]:
    """Small deterministic corpus: digits, numbers in box syntaxes, punctuation, class and question words."""
    lines = [" ".join(CLASS_WORDS), " ".join(QUESTION_WORDS), " ".join(PUNCT), "".join(PUNCT),
             "0 1 2 3 4 5 6 7 8 9 10 100 1000"]
    for i, (a, b) in enumerate(itertools.product(CLASS_WORDS, QUESTION_WORDS)):
        n = (i * 37) % 1001
        lines.append(f"{b} {a} ? {a} [{n}, {(n * 7) % 1001}, {(n * 3) % 1001}, {(n * 11) % 1001}]; "
                     f"{a}({n},{(n * 13) % 1001}),({(n * 5) % 1001},{n % 97}) "
                     f'{{"bbox_2d": [{n}, {n % 300}, {n % 500}, {n % 700}], "label": "{a}"}}')
    lines += [str(i) for i in range(1001)]
    return lines


def _train_tokenizer(base, vocab_size: int, special: list[str]):
    tok = base.train_new_from_iterator(corpus(), vocab_size=vocab_size, new_special_tokens=special)
    return tok


def _pil_image_processor(name: str, **kw):
    """transformers' PIL image processors: torchvision is not available beside the CPU torch here."""
    import transformers
    return getattr(transformers, name)(**kw)


def build_paligemma(out: Path) -> Path:
    from transformers import (GemmaTokenizer, PaliGemmaConfig, PaliGemmaForConditionalGeneration,
                              PaliGemmaProcessor)

    tok = _train_tokenizer(GemmaTokenizer(), 700, ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"])
    tok.add_bos_token, tok.add_eos_token = True, False
    image_size, patch = 56, 14
    ip = _pil_image_processor("SiglipImageProcessorPil", size={"height": image_size, "width": image_size})
    ip.image_seq_length = (image_size // patch) ** 2
    proc = PaliGemmaProcessor(image_processor=ip, tokenizer=tok)  # adds <image>, <locNNNN>, <segNNN>
    tok = proc.tokenizer
    vocab = len(tok)
    hidden = 64
    cfg = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=hidden, intermediate_size=64,
                           num_hidden_layers=1, num_attention_heads=2, image_size=image_size,
                           patch_size=patch, vision_use_head=False),
        text_config=dict(model_type="gemma2", hidden_size=hidden, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, vocab_size=vocab,
                         max_position_embeddings=512, sliding_window=256,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id),
        image_token_index=tok.convert_tokens_to_ids("<image>"), vocab_size=vocab, projection_dim=hidden,
        hidden_size=hidden, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id)
    return _save(PaliGemmaForConditionalGeneration(cfg), proc, out, tok)


def _save(model, proc, out: Path, tok, eos_ids: list[int] | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    gc = model.generation_config
    gc.eos_token_id = eos_ids or tok.eos_token_id
    gc.pad_token_id = tok.pad_token_id
    gc.bos_token_id = tok.bos_token_id
    gc.do_sample = False
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]


def _build_qwen(out: Path, *, v25: bool) -> Path:
    import transformers
    from transformers import Qwen2Tokenizer

    from worker.families.qwen2_vl import image_only_processor

    tok = _train_tokenizer(Qwen2Tokenizer(), 600, QWEN_SPECIAL)
    tok.pad_token, tok.eos_token = "<|endoftext|>", "<|im_end|>"
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    # min/max pixels kept small: a 56..112 px model input is 4..16 merged image tokens
    ip = _pil_image_processor("Qwen2VLImageProcessorPil", min_pixels=56 * 56, max_pixels=112 * 112)
    proc_cls = transformers.Qwen2_5_VLProcessor if v25 else transformers.Qwen2VLProcessor
    proc = image_only_processor(proc_cls)(image_processor=ip, tokenizer=tok)
    hidden = 64
    text = dict(hidden_size=hidden, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=len(tok), max_position_embeddings=1024,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    if v25:
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden,
                      window_size=56, fullatt_block_indexes=[1])
        cfg_cls, model_cls = transformers.Qwen2_5_VLConfig, transformers.Qwen2_5_VLForConditionalGeneration
    else:
        vision = dict(depth=1, embed_dim=32, hidden_size=hidden, num_heads=2, mlp_ratio=2)
        cfg_cls, model_cls = transformers.Qwen2VLConfig, transformers.Qwen2VLForConditionalGeneration
    cfg = cfg_cls(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                  video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                  vision_end_token_id=ids["<|vision_end|>"])
    return _save(model_cls(cfg), proc, out, tok, eos_ids=[ids["<|im_end|>"], ids["<|endoftext|>"]])


def build_qwen2_vl(out: Path) -> Path:
    return _build_qwen(out, v25=False)


def build_qwen2_5_vl(out: Path) -> Path:
    return _build_qwen(out, v25=True)


IDEFICS3_SPECIAL = (["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>",
                     "<global-img>"] + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)])


def build_smolvlm(out: Path) -> Path:
    from transformers import GPT2Tokenizer, Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor

    tok = _train_tokenizer(GPT2Tokenizer(), 600, IDEFICS3_SPECIAL)
    tok.pad_token, tok.eos_token, tok.bos_token = "<|endoftext|>", "<end_of_utterance>", "<|im_start|>"
    image_size, patch, scale = 64, 16, 2
    # no image splitting at this size: one 64 px view per image, (64/16)^2 / 2^2 = 4 image tokens
    ip = _pil_image_processor("Idefics3ImageProcessorPil", size={"longest_edge": image_size},
                              max_image_size={"longest_edge": image_size}, do_image_splitting=False)
    proc = Idefics3Processor(image_processor=ip, tokenizer=tok,
                             image_seq_len=(image_size // patch) ** 2 // scale ** 2)
    tok = proc.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in IDEFICS3_SPECIAL}
    hidden = 64
    cfg = Idefics3Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=image_size, patch_size=patch),
        text_config=dict(model_type="llama", hidden_size=hidden, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=len(tok),
                         max_position_embeddings=1024, bos_token_id=ids["<|im_start|>"],
                         eos_token_id=ids["<end_of_utterance>"], pad_token_id=ids["<|endoftext|>"]),
        image_token_id=ids["<image>"], scale_factor=scale, pad_token_id=ids["<|endoftext|>"])
    return _save(Idefics3ForConditionalGeneration(cfg), proc, out, tok,
                 eos_ids=[ids["<end_of_utterance>"], ids["<|endoftext|>"]])


BUILDERS = {"paligemma": build_paligemma, "qwen2_vl": build_qwen2_vl, "qwen2_5_vl": build_qwen2_5_vl,
            "smolvlm": build_smolvlm}


def build_tiny(family_name: str, out_dir: str | Path, *, seed: int = 0) -> Path:
    """Build the tiny model of `family_name` into `out_dir` (created) and return the folder."""
    if family_name not in BUILDERS:
        raise KeyError(f"no tiny builder for family {family_name!r}; known: {sorted(BUILDERS)}")
    torch.manual_seed(seed)
    return BUILDERS[family_name](Path(out_dir))
