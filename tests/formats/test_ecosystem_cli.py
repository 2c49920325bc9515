"""The CLI with the ecosystem formats: a Hugging Face dataset folder in (its train / validation /
test files as splits), instruction data for training elsewhere out (`--family`), and back in."""
from __future__ import annotations

import io
import json
import zipfile

from tests.formats.test_ecosystem_readers import CPPE5_FEATURES, cppe_row, parquet
from tests.test_cli_import import write_tree


def test_hub_folder_in_instruction_zip_out_and_back(cli, tmp_path):
    folder = write_tree(tmp_path / "cppe5", {
        "README.md": b"---\nlicense: unknown\n---\n",
        "data/train-00000-of-00001.parquet": parquet([cppe_row(1, 200, 100, [[20, 20, 80, 80]], [4])], CPPE5_FEATURES),
        "data/validation-00000-of-00001.parquet": parquet([cppe_row(2, 200, 100, [[0, 0, 100, 50]], [0])], CPPE5_FEATURES),
        "data/test-00000-of-00001.parquet": parquet([cppe_row(3, 200, 100, [], [])], CPPE5_FEATURES),
    })
    r = cli("import", "--project", "ppe", "--create", "--format", "hf_parquet", folder)
    assert r.exit_code == 0, r.output
    assert '"images_added": 3' in r.output and '"boxes_added": 2' in r.output

    out = tmp_path / "smol.zip"
    r = cli("export", "--project", "ppe", "--format", "llamafactory", "--family", "smolvlm", out)
    assert r.exit_code == 0, r.output
    zf = zipfile.ZipFile(out)
    assert set(zf.namelist()) == {"train.json", "val.json", "test.json", "dataset_info.json", "images/1.png",
                                  "images/2.png", "images/3.png", "image_status.csv"}
    (item,) = json.loads(zf.read("train.json"))
    assert item["conversations"][1]["value"] == "Mask [100, 200, 500, 1000]" and item["images"] == ["images/1.png"]

    r = cli("import", "--project", "back", "--create", "--format", "llamafactory", out)
    assert r.exit_code == 0 and '"boxes_added": 2' in r.output, r.output

    r = cli("export", "--project", "ppe", "--format", "coco", "--family", "qwen2_vl", tmp_path / "x.zip")
    assert r.exit_code == 1 and "takes no model family" in r.output and not (tmp_path / "x.zip").exists()
    r = cli("export", "--project", "ppe", "--format", "msswift", "--family", "llava", tmp_path / "x.zip")
    assert r.exit_code == 1 and "unknown model family 'llava'" in r.output


def test_api_export_family_and_file_name(client):
    from tests.formats.helpers import new_project, post_import

    pid = new_project(client)
    files = {"data/train-0.parquet": parquet([cppe_row(1, 200, 100, [[20, 20, 80, 80]], [4])], CPPE5_FEATURES)}
    assert post_import(client, pid, "hf_parquet", files).status_code == 200
    r = client.get(f"/api/projects/{pid}/export", params={"format": "msswift", "family": "paligemma"})
    assert r.status_code == 200 and f"project-{pid}-msswift-paligemma.zip" in r.headers["content-disposition"]
    line = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("train.jsonl"))
    assert line["messages"][0]["content"].startswith("<image>detect Coverall ; Face_Shield")
    assert line["messages"][1]["content"] == "<loc0204><loc0102><loc1023><loc0512> Mask"
    r = client.get(f"/api/projects/{pid}/export", params={"format": "yolo", "family": "paligemma"})
    assert r.status_code == 422 and "takes no model family" in r.json()["detail"]
