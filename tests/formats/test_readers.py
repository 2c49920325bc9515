"""Each reader on real files: conversions to pixels, labels, splits, attributes, the box rule."""
from __future__ import annotations

import json

import pytest
import yaml

from backend.config import Settings
from backend.errors import InvalidInput
from backend.formats import FORMATS, get_format
from backend.formats.base import DirSource, MemorySource
from backend.importer import parse
from tests.formats.helpers import SHARED_STK, STK_DATA, coco_files, png

S = Settings()


def read(fmt, files):
    return parse(fmt, MemorySource(files), S)


def test_registry_has_every_format_and_rejects_unknown():
    assert set(FORMATS) == {"coco", "yolo", "voc", "supertuxkart", "detjson", "hf_parquet", "labelstudio", "cvat",
                            "msswift", "llamafactory"}
    assert {n for n, f in FORMATS.items() if f.can_write} == {"coco", "yolo", "voc", "hf_parquet", "labelstudio",
                                                              "cvat", "msswift", "llamafactory"}
    with pytest.raises(InvalidInput, match="unknown export format 'supertuxkart'"):
        get_format("supertuxkart", writable=True)


def test_coco_converts_xywh_and_keeps_unused_categories():
    files = coco_files(cats=[{"id": 1, "name": "kart"}, {"id": 2, "name": "banana"}, {"id": 7, "name": " bomb "}])
    ds = read("coco", files)
    a, b = ds.images
    assert (a.file_name, a.width, a.height, b.file_name) == ("a.png", 64, 48, "b.png")
    assert [(x.label, x.x1, x.y1, x.x2, x.y2) for x in a.boxes] == [("kart", 1.5, 2.25, 11.625, 22.25)]
    assert ds.all_labels() == ["kart", "banana", "bomb"]
    assert ds.clipped == 0


def test_coco_clips_partly_outside_and_counts_it():
    files = coco_files([{"id": 5, "image_id": 1, "category_id": 1, "bbox": [-4, 40, 20, 20], "iscrowd": 1,
                         "attributes": {"occluded": True}}])
    ds = read("coco", files)
    box = ds.images[0].boxes[0]
    assert (box.x1, box.y1, box.x2, box.y2) == (0.0, 40.0, 16.0, 48.0)
    assert box.attributes == {"occluded": True, "iscrowd": 1}
    assert ds.clipped == 1


def test_coco_split_from_file_name_and_missing_annotations_warns():
    files = coco_files()
    doc = json.loads(files.pop("annotations.json"))
    del doc["annotations"]
    files["instances_val2017.json"] = json.dumps(doc).encode()
    ds = read("coco", files)
    assert {im.split for im in ds.images} == {"val"}
    assert all(not im.boxes for im in ds.images)
    assert "no 'annotations' key" in ds.warnings[0]


def test_yolo_splits_names_mapping_and_pixel_conversion():
    files = {
        "data.yaml": yaml.safe_dump({"names": {0: "kart", 1: "banana"}}).encode(),
        "images/train/a.png": png(100, 50, 1),
        "labels/train/a.txt": b"1 0.5 0.5 0.2 0.4\n\n0 0.05 0.5 0.2 0.2\n",
        "images/val/b.png": png(40, 40, 2),  # no label file: an image without boxes
        "valid/images/c.png": png(40, 40, 3),  # the Roboflow layout
        "valid/labels/c.txt": b"0 0.5 0.5 1 1\n",
    }
    ds = read("yolo", files)
    by = {im.file_name: im for im in ds.images}
    assert {n: im.split for n, im in by.items()} == {"a.png": "train", "b.png": "val", "c.png": "val"}
    boxes = [(b.label, b.x1, b.y1, b.x2, b.y2) for b in by["a.png"].boxes]
    assert boxes[0] == pytest.approx(("banana", 40.0, 15.0, 60.0, 35.0)) and boxes[0][0] == "banana"
    assert boxes[1][1:] == pytest.approx((0.0, 20.0, 15.0, 30.0))  # -5 clipped to 0
    assert ds.clipped == 1 and by["b.png"].boxes == []
    assert ds.labels == ["kart", "banana"]


def test_voc_reads_objects_attributes_and_imagesets_split():
    xml = b"""<annotation><filename>x.png</filename><size><width>64</width><height>48</height></size>
      <object><name>kart</name><difficult>1</difficult><pose>Left</pose>
        <bndbox><xmin>3.5</xmin><ymin>4</ymin><xmax>30</xmax><ymax>40.25</ymax></bndbox></object>
      <object><name>banana</name><bndbox><xmin>50</xmin><ymin>1</ymin><xmax>70</xmax><ymax>9</ymax></bndbox></object>
    </annotation>"""
    files = {"Annotations/x.xml": xml, "JPEGImages/x.png": png(64, 48), "ImageSets/Main/test.txt": b"x\n"}
    ds = read("voc", files)
    (im,) = ds.images
    assert (im.file_name, im.split) == ("x.png", "test")
    assert [(b.label, b.x1, b.y1, b.x2, b.y2) for b in im.boxes] == [
        ("kart", 3.5, 4.0, 30.0, 40.25), ("banana", 50.0, 1.0, 64.0, 9.0)]
    assert im.boxes[0].attributes == {"difficult": 1, "pose": "Left"}
    assert ds.clipped == 1


def test_detjson_list_file_per_image_files_and_jsonl():
    e1 = {"image_path": "imgs/a.png", "object": {"person": [[1, 2, 30, 40]], "dog": [[5, 5, 10, 10]]},
          "split": "train", "source": "seed"}
    e2 = {"image_path": "b.png", "object": {}}
    e3 = {"image_path": "c.png", "object": {"person": [[0, 0, 4, 4]]}}
    files = {"all.json": json.dumps([e1, e2]).encode(), "one/c.json": json.dumps(e3).encode(),
             "more.jsonl": (json.dumps({"image_path": "d.png", "object": {"cat": [[1, 1, 2, 2]]}}) + "\n").encode(),
             "imgs/a.png": png(64, 48, 1), "b.png": png(10, 10, 2), "one/c.png": png(8, 8, 3), "d.png": png(8, 8, 4)}
    ds = read("detjson", files)
    by = {im.file_name: im for im in ds.images}
    assert set(by) == {"imgs/a.png", "b.png", "one/c.png", "d.png"}
    assert [(b.label, b.x1, b.y2) for b in by["imgs/a.png"].boxes] == [("person", 1.0, 40.0), ("dog", 5.0, 10.0)]
    assert by["imgs/a.png"].split == "train" and by["imgs/a.png"].meta == {"source": "seed"}
    assert by["b.png"].boxes == []


def test_supertuxkart_boxes_scaled_and_meta_from_ego_ids():
    ds = parse("supertuxkart", DirSource(STK_DATA), S)
    by = {im.file_name: im for im in ds.images}
    assert set(by) == {"cornfield_crossing/17d01_00_im.jpg", "cornfield_crossing/1eb00_00_im.jpg",
                       "hacienda/ba720_00_im.jpg"}
    im = by["cornfield_crossing/17d01_00_im.jpg"]
    assert (im.width, im.height) == (300, 200)
    b0 = im.boxes[0]  # [1, 1, 263.6, 185.9, 328.7, 243.2] in the 600x400 frame
    assert (b0.label, b0.x1, b0.y1, b0.x2, b0.y2) == pytest.approx(("kart", 131.8, 92.95, 164.35, 121.6))
    assert b0.attributes == {"kart_id": 1, "kart_name": "Suzanne", "visible": 0.68}
    m = im.meta
    assert (m["track"], m["seed"], m["race_id"], m["frame"]) == ("cornfield_crossing", 5, "cornfield_crossing:seed5", "17d01")
    assert (m["ego_kart_id"], m["ego_kart_name"], m["ego_source"], m["ego_detected"]) == (0, "Puffy", "ego_ids", False)
    # distance_down_track [59.6, 66.59, 66.57, 64.58, 64.84, 52.93, 60.25, 62.61]: kart 0 is 7th, Suzanne leads
    assert (m["race_position"], m["leader"], m["distance_down_track"]) == (7, "Suzanne", 59.6)
    assert m["velocity"] == [-1.69, -0.33, 26.69] and m["visible"] == [0.68, 1.0, 1.0, 1.0]
    ego_in = by["cornfield_crossing/1eb00_00_im.jpg"].meta
    assert ego_in["ego_detected"] is True and ego_in["race_position"] == 2
    empty = by["hacienda/ba720_00_im.jpg"]
    assert empty.boxes == [] and empty.meta["track"] == "hacienda"


def test_supertuxkart_without_ego_ids_uses_the_box_nearest_the_centre():
    info = json.loads((STK_DATA / "cornfield_crossing/17d01_info.json").read_text())
    del info["ego_ids"]
    files = {"17d01_info.json": json.dumps(info).encode(),
             "17d01_00_im.jpg": (STK_DATA / "cornfield_crossing/17d01_00_im.jpg").read_bytes()}
    (im,) = read("supertuxkart", files).images
    # centres (600x400 frame): kart1 (296,215), kart2 (376,210), kart3 (148,266), kart4 (276,245): kart 1 wins
    assert (im.meta["ego_kart_id"], im.meta["ego_kart_name"], im.meta["ego_source"]) == (1, "Suzanne", "nearest_centre")
    assert im.meta["race_position"] == 1 and im.meta["ego_detected"] is True


def test_supertuxkart_whole_shared_track_folder():
    """A full track of the shared data set reads, every box inside its 300x200 image, kart names kept."""
    ds = parse("supertuxkart", DirSource(SHARED_STK / "lighthouse"), S)
    assert len(ds.images) == 141
    karts = [b for im in ds.images for b in im.boxes]
    assert karts and all(b.label == "kart" and b.attributes["kart_name"] for b in karts)
    assert all(0 <= b.x1 < b.x2 <= 300 and 0 <= b.y1 < b.y2 <= 200 for b in karts)
    assert {im.meta["race_id"] for im in ds.images} >= {"lighthouse:seed4"}
    # Set A (the camera follows the leader) has no ego_ids: the course rule, nearest box to the centre.
    assert all(im.meta["ego_source"] == "nearest_centre" and 1 <= im.meta["race_position"] <= 8
               for im in ds.images if im.boxes)


def test_supertuxkart_set_b_track_uses_its_ego_ids():
    """Set B follows kart 0 and says so in `ego_ids`: the reader takes it rather than the rule."""
    ds = parse("supertuxkart", DirSource(SHARED_STK / "black_forest"), S)
    assert len(ds.images) == 220
    assert all(im.meta["ego_source"] == "ego_ids" and im.meta["ego_kart_id"] == 0 for im in ds.images)
    assert sum(im.meta["ego_detected"] for im in ds.images) >= 0.95 * len(ds.images)


def test_directory_source_ignores_symlinks_out_of_the_root(tmp_path):
    root = tmp_path / "imp"
    (root / "images").mkdir(parents=True)
    (tmp_path / "secret.png").write_bytes(png(8, 8))
    (root / "images" / "leak.png").symlink_to(tmp_path / "secret.png")
    (root / "images" / "ok.png").write_bytes(png(8, 8, 5))
    src = DirSource(root)
    assert src.names() == ["images/ok.png"]
    assert src.skipped_links == ("images/leak.png",)
    with pytest.raises(InvalidInput, match="outside"):
        src.read("images/../../secret.png")


def test_a_folder_of_linked_folders_says_its_links_were_not_followed(tmp_path):
    """A dataset assembled from symlinked track folders imports nothing (links are not followed);
    the error says so instead of only "no file found"."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "lighthouse").symlink_to(SHARED_STK / "lighthouse", target_is_directory=True)
    assert DirSource(tmp_path / "data").skipped_links == ("lighthouse",)  # before names() was asked
    src = DirSource(tmp_path / "data")
    assert src.names() == [] and src.skipped_links == ("lighthouse",)
    with pytest.raises(InvalidInput) as e:
        parse("supertuxkart", src, S)
    assert "no *_info.json file found" in e.value.message
    assert "1 symbolic link not followed" in e.value.message and "lighthouse" in e.value.message
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput) as e:  # a folder without links keeps the plain message
        parse("supertuxkart", DirSource(tmp_path / "empty"), S)
    assert "symbolic" not in e.value.message
