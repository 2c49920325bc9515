"""ms-swift custom dataset JSONL: `{"messages": [{"role": "user", "content": "<image>..."},
{"role": "assistant", "content": "..."}], "images": ["images/a.png"]}`, one file per split
(`train.jsonl`, `val.jsonl`, `test.jsonl`, `unsplit.jsonl`), images alongside. The box syntax is
the chosen family's (default Qwen2-VL: `<|object_ref_start|>kart<|object_ref_end|><|box_start|>
(x1,y1),(x2,y2)<|box_end|>`, 0..1000); see `instruct.py`. Train with
`swift sft --dataset train.jsonl --val_dataset val.jsonl ...` from the unzipped folder.
Read: every `.jsonl` of the import (or the file the user named), one conversation per line.
"""
from __future__ import annotations

import json

from backend.errors import InvalidInput
from backend.formats.base import Source, decode_text, parse_json
from backend.formats.instruct import InstructFormat, Record, one_image, two_turns


class MsSwift(InstructFormat):
    name = "msswift"

    def load(self, source: Source):
        files = [source.focus] if source.focus else source.with_suffix(".jsonl")
        if not files:
            raise InvalidInput("ms-swift import: no .jsonl file found")
        out = []
        for jf in files:
            objs = []
            for ln, line in enumerate(decode_text(source.read(jf), jf).splitlines(), 1):
                if not line.strip():
                    continue
                where = f"{jf}: line {ln}"
                objs.append((where, parse_json(line, where)))  # depth and NUL checks as every reader
            out.append((jf, objs))
        return out

    def record(self, obj, where):
        if not isinstance(obj, dict):
            raise InvalidInput(f"{where}: expected a JSON object, got {type(obj).__name__}")
        user, answer = two_turns(obj.get("messages"), where, "role", "content", "user", "assistant")
        return Record(user, answer, one_image(obj, where))

    def to_obj(self, rec):
        return {"messages": [{"role": "user", "content": rec.user}, {"role": "assistant", "content": rec.answer}],
                "images": [rec.image]}

    def dump(self, records, put):
        for split, objs in records.items():
            put(f"{split}.jsonl", "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs).encode())
