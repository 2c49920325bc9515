"""Hostile input for the ecosystem readers through the API (SQLite and PostgreSQL): a 4xx naming
the problem, and the database and store unchanged."""
from __future__ import annotations

import json

import pytest

from tests.formats.helpers import new_project, png, post_import, snapshot
from tests.formats.test_ecosystem_readers import CPPE5_FEATURES, CVAT_XML, LS_TASKS, cppe_row, parquet

DEEP_JSON = b"[" * 200_000 + b"]" * 200_000
QWEN_PROMPT = "<image>Detect all objects of these classes and output their bounding boxes: kart"
QWEN_BOX = "<|object_ref_start|>kart<|object_ref_end|><|box_start|>(100,200),(500,1000)<|box_end|>"


def pq_files(rows, features=CPPE5_FEATURES, name="data/train-00000-of-00001.parquet", **extra):
    return {name: parquet(rows, features), **extra}


def ls_files(mutate=None, tasks=None):
    tasks = json.loads(json.dumps(tasks if tasks is not None else LS_TASKS))
    if mutate:
        mutate(tasks[0]["annotations"][1]["result"][0])
    return {"export.json": json.dumps(tasks).encode(), "kart.png": png(200, 100), "frames/b.png": png(10, 10)}


def cvat_files(xml=CVAT_XML, **drop):
    files = {"annotations.xml": xml, "images/a.png": png(64, 48), "images/b.png": png(80, 60)}
    return {k: v for k, v in files.items() if k not in drop.get("without", ())}


def swift(msgs=None, images=("a.png",), raw=None):
    line = raw if raw is not None else json.dumps({"messages": msgs if msgs is not None else [
        {"role": "user", "content": QWEN_PROMPT}, {"role": "assistant", "content": QWEN_BOX}], "images": list(images)})
    return {"train.jsonl": (line + "\n").encode() if isinstance(line, str) else line, "a.png": png(200, 100)}


def lf(info, data=None):
    return {"dataset_info.json": json.dumps(info).encode(), "a.png": png(200, 100),
            **({"train.json": json.dumps(data).encode()} if data is not None else {})}


CASES = {
    # name: (format, files, status, words the message must contain)
    "pq-not-parquet": ("hf_parquet", {"train.parquet": b"PAR1 this is not parquet"}, 422, ["train.parquet", "not a readable Parquet"]),
    "pq-missing-objects": ("hf_parquet", {"t.parquet": parquet([{"image": {"bytes": png(), "path": None}}])}, 422, ["t.parquet", "missing column", "'objects'"]),
    "pq-bbox-strings": ("hf_parquet", pq_files([{"image": {"bytes": png(), "path": None}, "objects": {"bbox": [["1", "2", "3", "4"]], "category": [0]}}]), 422, ["row 0: object 0", "4 numbers"]),
    "pq-bbox-3-numbers": ("hf_parquet", pq_files([cppe_row(1, 64, 48, [[1, 2, 3]], [0])]), 422, ["row 0: object 0", "4 numbers"]),
    "pq-category-out-of-range": ("hf_parquet", pq_files([cppe_row(1, 64, 48, [[1, 2, 3, 4]], [9])]), 422, ["row 0: object 0", "category 9", "0..4"]),
    "pq-index-without-names": ("hf_parquet", pq_files([cppe_row(1, 64, 48, [[1, 2, 3, 4]], [0])], features=None), 422, ["class index", "ClassLabel names"]),
    "pq-box-outside": ("hf_parquet", pq_files([cppe_row(1, 64, 48, [[100, 100, 3, 4]], [0])]), 422, ["row 0: object 0", "entirely outside"]),
    "pq-zero-size": ("hf_parquet", pq_files([cppe_row(1, 64, 48, [[1, 1, 0, 4]], [0])]), 422, ["row 0: object 0", "zero or negative"]),
    "pq-lengths-differ": ("hf_parquet", pq_files([{**cppe_row(1, 64, 48, [[1, 2, 3, 4]], [0]), "objects": {"bbox": [[1, 2, 3, 4]], "category": [0, 1]}}]), 422, ["row 0", "same length"]),
    "pq-size-wrong": ("hf_parquet", pq_files([{**cppe_row(1, 64, 48, [], []), "width": 65}]), 422, ["row 0", "65x48", "64x48"]),
    "pq-image-not-an-image": ("hf_parquet", pq_files([{**cppe_row(1, 64, 48, [], []), "image": {"bytes": b"hello", "path": "x.png"}}]), 422, ["row 0", "not a readable image"]),
    "pq-image-missing-file": ("hf_parquet", pq_files([cppe_row(1, 64, 48, [], [], path="gone.png", data=False)]), 422, ["row 0", "gone.png", "not in"]),
    "pq-image-neither": ("hf_parquet", pq_files([cppe_row(1, 64, 48, [], [], data=False)]), 422, ["row 0", "neither bytes nor a path"]),
    "pq-image-wrong-type": ("hf_parquet", pq_files([{**cppe_row(1, 64, 48, [], []), "image": 5}], features=None), 422, ["row 0", "'image' must be"]),
    "pq-bad-metadata": ("hf_parquet", {"t.parquet": parquet([cppe_row(1, 64, 48, [], [])], {"objects": {"category": {"_type": "ClassLabel", "names": [""]}}})}, 422, ["t.parquet", "ClassLabel names[0]", "empty"]),
    "ls-not-tasks": ("labelstudio", {"export.json": b'[{"id": 1}]', "a.png": png()}, 422, ["task 0", "'data'"]),
    "ls-percent-string": ("labelstudio", ls_files(lambda r: r["value"].update(x="10")), 422, ["task 0", "result 0", "value.x", "number"]),
    "ls-outside": ("labelstudio", ls_files(lambda r: r["value"].update(x=150)), 422, ["task 0", "result 0", "entirely outside"]),
    "ls-rotated": ("labelstudio", ls_files(lambda r: r["value"].update(rotation=30)), 422, ["result 0", "rotated"]),
    "ls-size-wrong": ("labelstudio", ls_files(lambda r: r.update(original_width=201)), 422, ["result 0", "201x100", "200x100"]),
    "ls-two-labels": ("labelstudio", ls_files(lambda r: r["value"].update(rectanglelabels=["a", "b"])), 422, ["result 0", "exactly one label"]),
    "ls-missing-image": ("labelstudio", {k: v for k, v in ls_files().items() if k != "kart.png"}, 422, ["task 0", "kart.png", "not in the import"]),
    "ls-deeply-nested": ("labelstudio", {"export.json": DEEP_JSON, "a.png": png()}, 422, ["export.json", "nested deeper than"]),
    "cvat-billion-laughs": ("cvat", cvat_files(b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l "lol"><!ENTITY l2 "&l;&l;&l;&l;">]><annotations><image name="&l2;"/></annotations>'), 422, ["annotations.xml", "entities"]),
    "cvat-wrong-root": ("cvat", cvat_files(b"<annotation><filename>a.png</filename></annotation>"), 422, ["annotations.xml", "<annotations>"]),
    "cvat-coordinate-text": ("cvat", cvat_files(CVAT_XML.replace(b'xtl="1.50"', b'xtl="left"')), 422, ["image id 0", "not numbers"]),
    "cvat-outside": ("cvat", cvat_files(CVAT_XML.replace(b'xtl="60"', b'xtl="600"').replace(b'xbr="70"', b'xbr="700"')), 422, ["image id 0", "entirely outside"]),
    "cvat-size-wrong": ("cvat", cvat_files(CVAT_XML.replace(b'width="80"', b'width="81"')), 422, ["image id 1", "81x60"]),
    "cvat-missing-image": ("cvat", cvat_files(without=("images/b.png",)), 422, ["image id 1", "b.png", "not in the import"]),
    "cvat-rotation-text": ("cvat", cvat_files(CVAT_XML.replace(b'z_order="0"', b'rotation="x"')), 422, ["rotation", "not a number"]),
    "cvat-deeply-nested": ("cvat", {"annotations.xml": b"<annotations>" + b"<a>" * 30_000 + b"</a>" * 30_000 + b"</annotations>"}, 422, ["no images"]),
    "swift-no-image-token": ("msswift", swift([{"role": "user", "content": QWEN_PROMPT[7:]}, {"role": "assistant", "content": QWEN_BOX}]), 422, ["line 1", "<image>"]),
    "swift-unknown-prompt": ("msswift", swift([{"role": "user", "content": "<image>What is this?"}, {"role": "assistant", "content": "a kart"}]), 422, ["line 1", "detection prompt"]),
    "swift-answer-garbage": ("msswift", swift([{"role": "user", "content": QWEN_PROMPT}, {"role": "assistant", "content": "kart at the left"}]), 422, ["line 1", "no box in qwen2_vl syntax"]),
    "swift-two-images": ("msswift", swift(images=("a.png", "a.png")), 422, ["line 1", "one image"]),
    "swift-content-not-string": ("msswift", swift([{"role": "user", "content": ["<image>"]}, {"role": "assistant", "content": QWEN_BOX}]), 422, ["line 1", "'content' must be a string"]),
    "swift-bad-json-line": ("msswift", swift(raw="{not json"), 422, ["train.jsonl", "line 1", "not valid JSON"]),
    "swift-deeply-nested": ("msswift", swift(raw=DEEP_JSON), 422, ["line 1", "nested deeper than"]),
    "swift-missing-image": ("msswift", swift(images=("gone.png",)), 422, ["line 1", "gone.png", "not in the import"]),
    "lf-missing-data-file": ("llamafactory", lf({"x": {"file_name": "train.json", "formatting": "sharegpt"}}), 422, ["train.json", "not in the import"]),
    "lf-alpaca": ("llamafactory", lf({"x": {"file_name": "train.json"}}, []), 422, ["entry 'x'", "sharegpt"]),
    "lf-turn-order": ("llamafactory", lf({"x": {"file_name": "train.json", "formatting": "sharegpt"}}, [{"conversations": [{"from": "gpt", "value": QWEN_BOX}, {"from": "human", "value": QWEN_PROMPT}], "images": ["a.png"]}]), 422, ["item 0", "'human' then 'gpt'"]),
}


@pytest.mark.parametrize("fmt", sorted({c[0] for c in CASES.values()}))
def test_bad_ecosystem_import_is_rejected_and_changes_nothing(client, app, fmt):
    """Every case of one format on one app (an app per case would cost a migrated database each)."""
    pid = new_project(client)
    before = snapshot(app)
    for case, (f, files, status, words) in CASES.items():
        if f != fmt:
            continue
        r = post_import(client, pid, fmt, files)
        assert r.status_code == status, (case, r.text)
        for w in words:
            assert w in r.json()["detail"], (case, w, r.json()["detail"])
        assert snapshot(app) == before, case


def test_parquet_declaring_a_decompression_bomb_is_refused_before_decoding(client, app, monkeypatch):
    # the real cap (settings.max_archive_bytes) is 4 GiB: too big to make here
    monkeypatch.setattr(app.state.settings, "max_archive_bytes", 10_000)
    pid = new_project(client)
    before = snapshot(app)
    rows = [{"image": {"bytes": b"\0" * 20_000, "path": None}, "objects": None}]
    r = post_import(client, pid, "hf_parquet", {"t.parquet": parquet(rows)})
    assert r.status_code == 413 and "declares" in r.json()["detail"], r.text
    assert snapshot(app) == before
