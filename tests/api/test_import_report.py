"""The import dialog's report: boxes per label, labels created and labels matched to the project's."""
from __future__ import annotations

from tests.formats.helpers import post_import
from tests.formats.test_roundtrip import source_dataset


def test_report_counts_per_label_and_matched_labels(client):
    pid = client.post("/api/projects", json={"name": "imp", "labels": [{"name": "kart"}]}).json()["id"]
    r = post_import(client, pid, "coco", source_dataset())
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["labels_matched"] == ["kart"] and rep["labels_created"] == ["red banana", "unused"]
    assert sum(rep["boxes_per_label"].values()) == rep["boxes_added"] == 12
    assert set(rep["boxes_per_label"]) <= {"kart", "red banana"}
