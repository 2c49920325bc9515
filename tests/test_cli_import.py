"""`studio import` / `studio export` on the settings database (env vars point at a temp dir)."""
from __future__ import annotations

import json
import zipfile


from tests.formats.helpers import STK_DATA, coco_files


def write_tree(root, files):
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_import_export_reimport(cli, tmp_path):
    src = write_tree(tmp_path / "coco", coco_files())
    r = cli("import", "--project", "demo", "--format", "coco", src)
    assert r.exit_code == 2 and "no project 'demo'" in r.output  # a usage error
    r = cli("import", "--project", "demo", "--format", "coco", "--create", src)
    assert r.exit_code == 0, r.output
    report = json.loads(r.output[r.output.index("{"):])
    assert (report["images_added"], report["boxes_added"], report["labels_created"]) == (2, 2, ["kart", "banana"])

    out = tmp_path / "out.zip"
    r = cli("export", "--project", "demo", "--format", "voc", out)
    assert r.exit_code == 0, r.output
    assert {"Annotations/a.xml", "JPEGImages/b.png"} <= set(zipfile.ZipFile(out).namelist())
    r = cli("import", "--project", "again", "--create", "--format", "voc", out)
    assert r.exit_code == 0 and '"boxes_added": 2' in r.output

    # the same names again: a conflict, exit code 1, the message names the files
    r = cli("import", "--project", "1", "--format", "coco", src / "annotations.json")
    assert r.exit_code == 1 and "error (409)" in r.output and "a.png" in r.output


def test_import_supertuxkart_directory_and_bad_input(cli, tmp_path):
    r = cli("import", "--project", "stk", "--create", "--format", "supertuxkart", STK_DATA)
    assert r.exit_code == 0 and '"images_added": 3' in r.output and '"boxes_added": 6' in r.output
    bad = write_tree(tmp_path / "bad", {**coco_files(), "annotations.json": b"\xff\xfe not utf8"})
    r = cli("import", "--project", "stk", "--format", "coco", bad)
    assert r.exit_code == 1 and "annotations.json: not UTF-8" in r.output
    r = cli("export", "--project", "stk", "--format", "supertuxkart", tmp_path / "x.zip")
    assert r.exit_code == 1 and "unknown export format" in r.output and not (tmp_path / "x.zip").exists()
