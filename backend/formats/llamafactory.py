"""LLaMA-Factory multimodal sharegpt: `<split>.json` (a list of `{"conversations": [{"from": "human",
"value": "<image>..."}, {"from": "gpt", "value": "..."}], "images": ["images/a.png"]}`) per split,
images alongside, and `dataset_info.json` with one `studio_<split>` entry (`formatting: sharegpt`,
columns and tags spelled out) so `dataset_dir` can point at the unzipped folder. The box syntax is
the chosen family's; see `instruct.py`.
Read: the files `dataset_info.json` names (its `columns` / `tags` honoured), else every `.json`
of the import (or the file the user named) as a list of conversations.
"""
from __future__ import annotations

import json
import posixpath

from backend.errors import InvalidInput
from backend.formats.base import Source, load_json
from backend.formats.instruct import InstructFormat, Record, one_image, two_turns

INFO = "dataset_info.json"
TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}


class LlamaFactory(InstructFormat):
    name = "llamafactory"

    def load(self, source: Source):
        entries: list[tuple[str, dict, dict]] = []  # (data file, columns, tags)
        infos = [n for n in source.with_suffix(INFO) if posixpath.basename(n) == INFO]
        if infos and not source.focus:
            doc = load_json(source.read(infos[0]), infos[0])
            if not isinstance(doc, dict):
                raise InvalidInput(f"{infos[0]}: expected an object of dataset entries")
            base = posixpath.dirname(infos[0])
            for key, e in doc.items():
                if not isinstance(e, dict) or not isinstance(e.get("file_name"), str):
                    raise InvalidInput(f"{infos[0]}: entry {key!r} needs a 'file_name' string")
                if e.get("formatting", "alpaca") != "sharegpt":
                    raise InvalidInput(f"{infos[0]}: entry {key!r} is not 'formatting: sharegpt'")
                cols = e.get("columns") if isinstance(e.get("columns"), dict) else {}
                tags = {**TAGS, **(e.get("tags") if isinstance(e.get("tags"), dict) else {})}
                entries.append((posixpath.join(base, e["file_name"]) if base else e["file_name"], cols, tags))
        else:
            files = [source.focus] if source.focus else [n for n in source.with_suffix(".json")
                                                         if posixpath.basename(n) != INFO]
            entries = [(f, {}, TAGS) for f in files]
        if not entries:
            raise InvalidInput("LLaMA-Factory import: no dataset_info.json entry or .json data file found")
        out = []
        for df, cols, tags in entries:
            if df not in source:
                raise InvalidInput(f"{INFO}: data file {df!r} is not in the import")
            doc = load_json(source.read(df), df)
            if not isinstance(doc, list):
                raise InvalidInput(f"{df}: expected a JSON list of conversations, got {type(doc).__name__}")
            msgs, imgs = cols.get("messages", "conversations"), cols.get("images", "images")
            objs = []
            for i, o in enumerate(doc):
                if not isinstance(o, dict):
                    raise InvalidInput(f"{df}: item {i}: expected an object")
                objs.append((f"{df}: item {i}", {"turns": o.get(msgs), "images": o.get(imgs), "tags": tags}))
            out.append((df, objs))
        return out

    def record(self, obj, where):
        t = obj["tags"]
        user, answer = two_turns(obj["turns"], where, t["role_tag"], t["content_tag"], t["user_tag"],
                                 t["assistant_tag"])
        return Record(user, answer, one_image(obj, where))

    def to_obj(self, rec):
        return {"conversations": [{"from": "human", "value": rec.user}, {"from": "gpt", "value": rec.answer}],
                "images": [rec.image]}

    def dump(self, records, put):
        info = {}
        for split, objs in records.items():
            put(f"{split}.json", json.dumps(objs, ensure_ascii=False, indent=1).encode())
            info[f"studio_{split}"] = {"file_name": f"{split}.json", "formatting": "sharegpt",
                                       "columns": {"messages": "conversations", "images": "images"}, "tags": TAGS}
        put(INFO, json.dumps(info, indent=2).encode())
