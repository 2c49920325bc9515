"""The ecosystem formats on hand-written files (no database): Hugging Face Parquet, Label Studio,
CVAT 1.1, ms-swift and LLaMA-Factory; the exact box syntax each instruction export writes."""
from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backend.config import Settings
from backend.errors import InvalidInput
from backend.formats import get_format
from backend.formats.base import Dataset, MemorySource, ParsedBox, ParsedImage
from backend.formats.instruct import FAMILIES
from backend.importer import parse
from tests.formats.helpers import png

S = Settings()
CPPE5_FEATURES = {  # as detection-datasets/cppe-5 declares them (datasets' Sequence(dict) form)
    "image_id": {"dtype": "int64", "_type": "Value"}, "image": {"_type": "Image"},
    "width": {"dtype": "int32", "_type": "Value"}, "height": {"dtype": "int32", "_type": "Value"},
    "objects": {"feature": {"id": {"dtype": "int64", "_type": "Value"}, "area": {"dtype": "int64", "_type": "Value"},
                            "bbox": {"feature": {"dtype": "float32", "_type": "Value"}, "length": 4, "_type": "Sequence"},
                            "category": {"names": ["Coverall", "Face_Shield", "Gloves", "Goggles", "Mask"],
                                         "_type": "ClassLabel"}}, "_type": "Sequence"},
}


def read(fmt, files):
    return parse(fmt, MemorySource(files), S)


def parquet(rows: list[dict], features: dict | None = None, schema: pa.Schema | None = None) -> bytes:
    t = pa.Table.from_pylist(rows, schema=schema)
    if features is not None:
        t = t.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    buf = io.BytesIO()
    pq.write_table(t, buf)
    return buf.getvalue()


def cppe_row(i, w, h, bboxes, cats, path=None, data=True):
    return {"image_id": i, "image": {"bytes": png(w, h, i) if data else None, "path": path}, "width": w,
            "height": h, "objects": {"id": list(range(len(cats))), "area": [1] * len(cats), "bbox": bboxes,
                                     "category": cats}}


def boxes(img):
    return [(b.label, b.x1, b.y1, b.x2, b.y2) for b in img.boxes]


# ---------------------------------------------------------------- Hugging Face Parquet

def test_parquet_cppe5_layout_splits_from_files_and_classlabel_names():
    files = {
        "data/train-00000-of-00001.parquet": parquet(
            [cppe_row(15, 64, 48, [[1.5, 2.0, 10.0, 20.0], [30, 10, 5, 5]], [4, 0], path="15.png"),
             cppe_row(16, 80, 60, [], [])], CPPE5_FEATURES),
        "data/validation-00000-of-00001.parquet": parquet([cppe_row(3, 33, 77, [[0, 0, 40, 10]], [2])], CPPE5_FEATURES),
        "data/test-00000-of-00001.parquet": parquet([cppe_row(15, 20, 20, [], [], path="15.png")], CPPE5_FEATURES),
    }
    ds = read("hf_parquet", files)
    by = {im.file_name: im for im in ds.images}
    # files are read in name order: the test split's 15.png came first, the train one is prefixed
    assert {n: im.split for n, im in by.items()} == {"15.png": "test", "16.png": "train", "3.png": "val",
                                                      "train/15.png": "train"}
    assert boxes(by["train/15.png"]) == [("Mask", 1.5, 2.0, 11.5, 22.0), ("Coverall", 30, 10, 35, 15)]
    assert boxes(by["3.png"]) == [("Gloves", 0, 0, 33, 10)] and ds.clipped == 1
    assert ds.labels == ["Coverall", "Face_Shield", "Gloves", "Goggles", "Mask"]  # unused classes kept


def test_parquet_list_of_structs_paths_dataset_info_and_string_categories():
    rows = [{"image": {"bytes": None, "path": "imgs/a.png"}, "objects": [{"bbox": [1, 1, 4, 4], "category": 1}]}]
    named = [{"image": {"bytes": png(12, 12), "path": None}, "image_id": 7,
              "objects": [{"bbox": [2, 2, 3, 3], "category": "kart"}]}]
    info = {"features": {"objects": {"_type": "List", "feature": {"bbox": {}, "category": {
        "_type": "ClassLabel", "names": ["kart", "banana"]}}}}}
    ds = read("hf_parquet", {"train/0000.parquet": parquet(rows), "more.parquet": parquet(named),
                             "dataset_info.json": json.dumps(info).encode(), "imgs/a.png": png(10, 10)})
    by = {im.file_name: im for im in ds.images}
    assert {n: im.split for n, im in by.items()} == {"imgs/a.png": "train", "7.png": None}
    assert boxes(by["imgs/a.png"]) == [("banana", 1, 1, 5, 5)] and boxes(by["7.png"]) == [("kart", 2, 2, 5, 5)]


def test_parquet_export_is_what_the_hub_loader_reads():
    ds = Dataset(images=[ParsedImage("a.png", lambda: png(64, 48), 64, 48, split="val",
                                     boxes=[ParsedBox("kart", 1.25, 2, 11, 22)]),
                         ParsedImage("b.png", lambda: png(8, 8), 8, 8)], labels=["kart", "unused"])
    out = {}
    get_format("hf_parquet").write(ds, out.__setitem__)
    assert set(out) == {"data/validation-00000-of-00001.parquet", "data/unsplit-00000-of-00001.parquet", "README.md"}
    f = pq.ParquetFile(io.BytesIO(out["data/validation-00000-of-00001.parquet"]))
    feats = json.loads(f.schema_arrow.metadata[b"huggingface"])["info"]["features"]
    assert feats["objects"]["feature"]["category"] == {"names": ["kart", "unused"], "_type": "ClassLabel"}
    row = f.read().to_pylist()[0]
    assert row["objects"]["bbox"] == [[1.25, 2, 9.75, 20]] and row["objects"]["category"] == [0]
    assert row["image"]["path"] == "a.png" and row["image"]["bytes"][:4] == b"\x89PNG"
    assert "- split: validation\n    path: data/validation-00000-of-00001.parquet" in out["README.md"].decode()


# ---------------------------------------------------------------- Label Studio

LS_TASKS = [
    {"id": 1, "data": {"image": "/data/upload/3/1a2b3c4d-kart.png"}, "annotations": [
        {"was_cancelled": True, "result": []},
        {"result": [{"type": "rectanglelabels", "original_width": 200, "original_height": 100, "value": {
            "x": 10, "y": 20, "width": 25, "height": 50, "rotation": 0, "rectanglelabels": ["kart"]}},
            {"type": "polygonlabels", "value": {"points": [[1, 1]], "polygonlabels": ["kart"]}}]},
        {"result": []}]},
    {"id": 2, "data": {"image": "/data/local-files/?d=frames%2Fb.png", "split": "val"}, "annotations": []},
]


def test_labelstudio_percentages_upload_prefix_local_files_and_skipped_shapes():
    ds = read("labelstudio", {"export.json": json.dumps(LS_TASKS).encode(), "kart.png": png(200, 100),
                              "frames/b.png": png(10, 10)})
    a, b = ds.images
    assert (a.file_name, boxes(a)) == ("kart.png", [("kart", 20.0, 20.0, 70.0, 70.0)])
    assert (b.file_name, b.split, b.boxes) == ("frames/b.png", "val", [])
    assert any("polygonlabels" in w for w in ds.warnings) and any("several annotations" in w for w in ds.warnings)


def test_labelstudio_writes_percentages_of_the_image():
    ds = Dataset(images=[ParsedImage("a.png", lambda: png(200, 100), 200, 100, boxes=[ParsedBox("kart", 20, 20, 70, 70)])])
    out = {}
    get_format("labelstudio").write(ds, out.__setitem__)
    (task,) = json.loads(out["tasks.json"])
    (r,) = task["annotations"][0]["result"]
    assert task["data"]["image"] == "images/a.png" and r["type"] == "rectanglelabels"
    assert r["value"] == {"x": 10.0, "y": 20.0, "width": 25.0, "height": 50.0, "rotation": 0, "rectanglelabels": ["kart"]}


# ---------------------------------------------------------------- CVAT

CVAT_XML = b"""<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version>
<meta><task><labels><label><name>kart</name></label><label><name>banana</name></label><label><name>unused</name></label></labels></task></meta>
<image id="0" name="a.png" width="64" height="48" subset="Train">
  <box label="kart" occluded="1" source="manual" xtl="1.50" ytl="2.25" xbr="11.63" ybr="22.25" z_order="0">
    <attribute name="colour">red</attribute></box>
  <polygon label="banana" points="1,1;5,5;1,5" occluded="0"/>
  <box label="banana" occluded="0" xtl="60" ytl="40" xbr="70" ybr="50"/>
</image>
<image id="1" name="b.png" width="80" height="60" subset="Validation"/>
</annotations>"""


def test_cvat_meta_labels_subsets_attributes_and_skipped_polygons():
    ds = read("cvat", {"annotations.xml": CVAT_XML, "images/Train/a.png": png(64, 48), "images/b.png": png(80, 60)})
    a, b = ds.images
    assert (a.split, b.split) == ("train", "val")
    assert boxes(a) == [("kart", 1.5, 2.25, 11.63, 22.25), ("banana", 60, 40, 64, 48)]
    assert a.boxes[0].attributes == {"occluded": 1, "colour": "red"} and ds.clipped == 1
    assert ds.all_labels() == ["kart", "banana", "unused"]
    assert any("non-box shape" in w for w in ds.warnings)


# ---------------------------------------------------------------- instruction data

def test_msswift_reads_the_qwen2_vl_recipe_layout():
    answer = ("<|object_ref_start|>person<|object_ref_end|><|box_start|>(100,200),(500,1000)<|box_end|>"
              "<|object_ref_start|>dog<|object_ref_end|><|box_start|>(0,0),(250,250)<|box_end|>")
    line = {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": "<image>Detect all objects of these classes and output their "
                                                     "bounding boxes: person, dog, cat"},
                         {"role": "assistant", "content": answer}], "images": ["pics/a.png"]}
    ds = read("msswift", {"val.jsonl": (json.dumps(line) + "\n").encode(), "pics/a.png": png(200, 100)})
    (im,) = ds.images
    assert (im.file_name, im.split) == ("pics/a.png", "val")
    assert boxes(im) == [("person", 20, 20, 100, 100), ("dog", 0, 0, 50, 25)]
    assert ds.all_labels() == ["person", "dog", "cat"]


@pytest.mark.parametrize("family,answer", [
    ("qwen2_vl", "<|object_ref_start|>person<|object_ref_end|><|box_start|>(100,200),(500,999)<|box_end|>"),
    ("paligemma", "<loc0204><loc0102><loc1023><loc0512> person"),
    ("smolvlm", "person [100, 200, 500, 1000]"),
    ("qwen2_5_vl", '[{"bbox_2d": [20, 22, 98, 112], "label": "person"}]'),  # of the 196x112 model input
])
def test_instruction_export_uses_each_family_exact_syntax(family, answer):
    ds = Dataset(images=[ParsedImage("a.png", lambda: png(200, 100), 200, 100, split="train",
                                     boxes=[ParsedBox("person", 20, 20, 100, 100)])], labels=["person", "dog"])
    out = {}
    get_format("msswift").configured(family).write(ds, out.__setitem__)
    (line,) = [json.loads(x) for x in out["train.jsonl"].decode().splitlines()]
    assert line["images"] == ["images/a.png"] and set(out) == {"train.jsonl", "images/a.png"}
    user, asst = line["messages"]
    assert user == {"role": "user", "content": "<image>" + FAMILIES[family].prefix + FAMILIES[family].sep.join(
        ["person", "dog"])}
    assert asst == {"role": "assistant", "content": answer}


def test_llamafactory_sharegpt_with_dataset_info_and_custom_tags():
    out = {}
    ds = Dataset(images=[ParsedImage("a.png", lambda: png(200, 100), 200, 100, split="test",
                                     boxes=[ParsedBox("kart", 20, 20, 100, 100)])])
    get_format("llamafactory").write(ds, out.__setitem__)
    info = json.loads(out["dataset_info.json"])
    assert info == {"studio_test": {"file_name": "test.json", "formatting": "sharegpt",
                                    "columns": {"messages": "conversations", "images": "images"},
                                    "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                                             "assistant_tag": "gpt"}}}
    (item,) = json.loads(out["test.json"])
    assert item["conversations"][0]["from"] == "human" and item["conversations"][1]["value"].startswith(
        "<|object_ref_start|>kart<|object_ref_end|><|box_start|>(100,200),(500,999)")
    # LLaMA-Factory's own multimodal demo layout: messages / role / content
    demo = [{"messages": [{"role": "user", "content": item["conversations"][0]["value"]},
                          {"role": "assistant", "content": item["conversations"][1]["value"]}], "images": ["a.png"]}]
    info = {"mine": {"file_name": "d/mllm.json", "formatting": "sharegpt", "columns": {"messages": "messages",
            "images": "images"}, "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                          "assistant_tag": "assistant"}}}
    ds2 = read("llamafactory", {"dataset_info.json": json.dumps(info).encode(), "d/mllm.json": json.dumps(demo).encode(),
                                "d/a.png": png(200, 100)})
    # Qwen2-VL's grid is 0..999: the bottom edge comes back within one bin (99.9 of 100 px)
    assert boxes(ds2.images[0]) == [("kart", 20, 20, 100, pytest.approx(100, abs=0.1))]
    assert ds2.images[0].file_name == "d/a.png"


def test_instruction_prompts_are_the_families_own():
    from worker.families import REGISTRY

    for name, syn in FAMILIES.items():
        assert REGISTRY[name]().detection_prompt(["a", "b c"]) == syn.prefix + syn.sep.join(["a", "b c"]), name
    assert set(FAMILIES) == set(REGISTRY)


def test_unknown_family_and_family_on_a_plain_format_are_rejected():
    with pytest.raises(InvalidInput, match="unknown model family 'llava'"):
        get_format("msswift").configured("llava")
    with pytest.raises(InvalidInput, match="takes no model family"):
        get_format("coco").configured("qwen2_vl")
