"""The model catalogue (GET /api/models, `studio models`) and the fast failure of a hub id the hub
cannot serve: refused at launch with one sentence (422, nothing queued), or, when the hub went
away after the launch, failed by the worker before it loads anything."""
from __future__ import annotations

import json
import shutil
import socket

import pytest
import torch
from sqlalchemy import select

from backend import catalog
from backend.db import session_scope
from backend.models import Run
from tests.runs.conftest import config, make_project, tiny_paligemma  # noqa: F401 - a fixture
from worker.runner import execute

torch.set_num_threads(1)
HUB_ID = "google/paligemma2-3b-pt-224"


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No hub: HF_HUB_OFFLINE set, and an empty hub cache (the machine's own cache is not looked at)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))


def _local_copy(app, tiny, name: str = "my-pali"):
    dest = app.state.settings.data_dir / "models" / name
    shutil.copytree(tiny, dest)
    return dest


def test_catalogue_lists_local_folder_demo_and_hub_presets(client, app, offline, tiny_paligemma):
    from transformers import PaliGemmaForConditionalGeneration

    dest = _local_copy(app, tiny_paligemma)
    # a model pre-trained here says on what
    pre = _local_copy(app, tiny_paligemma, f"{catalog.DEMO_PREFIX}abc")
    (pre / "studio_pretraining.json").write_text(json.dumps(
        {"data": "SYNTHETIC racing scenes", "recipe": {"steps": 7}, "samples": 12, "seconds": 3.5}))
    (app.state.settings.data_dir / "models" / "not-a-model").mkdir()
    r = client.get("/api/models")
    assert r.status_code == 200, r.text
    items = {m["id"]: m for m in r.json()["items"]}
    local = items[str(dest.resolve())]
    assert local["source"] == "local" and local["family"] == "paligemma" and local["status"] == "ready"
    assert local["size_bytes"] == sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    model = PaliGemmaForConditionalGeneration.from_pretrained(dest)
    assert local["parameters"] == sum(t.numel() for t in model.state_dict().values()) - _tied(model)
    assert local["pretrained"] is None and local["suggested"] is None
    demo = r.json()["items"][0]
    assert demo["source"] == "demo" and demo["status"] == "ready" and demo["id"] == str(pre.resolve())
    assert demo["pretrained"] == {"data": "SYNTHETIC racing scenes", "steps": 7, "samples": 12, "seconds": 3.5,
                                  "cpu_seconds": None, "tracks": [], "never_seen": [], "held_out": {}}
    hub = [m for m in r.json()["items"] if m["source"] == "hub"]
    assert sorted(m["family"] for m in hub) == ["paligemma", "qwen2_5_vl", "qwen2_vl", "smolvlm"]
    assert all(m["status"] == "needs_hub" and m["note"] == "needs the model hub or a local copy" for m in hub)
    assert not any(m["name"] == "not-a-model" for m in r.json()["items"])


def _tied(model) -> int:
    """Parameters that share storage with another (tied embeddings): saved once."""
    seen, dup = set(), 0
    for t in model.state_dict().values():
        if t.data_ptr() in seen:
            dup += t.numel()
        seen.add(t.data_ptr())
    return dup


def test_fresh_data_dir_gets_the_shipped_demo_base_ready(client, app, offline):
    """The shipped weights (backend/demo_data/model) are copied into <data>/models on first look: ready
    at once, with what they were pre-trained on and which tracks they never saw."""
    demo = client.get("/api/models").json()["items"][0]
    card = catalog.shipped_demo_card()
    assert demo["source"] == "demo" and demo["status"] == "ready", demo
    dest = app.state.settings.data_dir / "models" / f"{catalog.DEMO_PREFIX}{card['sha256'][:12]}"
    assert demo["id"] == str(dest.resolve()) and (dest / "model.safetensors").is_file()
    assert demo["pretrained"]["tracks"] == sorted(card["tracks"]) and "real SuperTuxKart" in demo["name"]
    assert set(demo["pretrained"]["never_seen"]) == {"lighthouse", "snowtuxpeak", "zengarden", "cornfield_crossing",
                                                     "sandtrack"}
    assert "never saw the demo's tracks" in demo["note"]
    # a fine-tune keeps the base's object order and loss: the card's recipe, as the demo's own run
    from backend.demo import RUN_CONFIG

    assert demo["suggested"] == {"object_order": "largest_first", "loc_sigma": card["recipe"]["loc_sigma"]}
    assert {k: RUN_CONFIG[k] for k in demo["suggested"]} == demo["suggested"]
    items = client.get("/api/models").json()["items"]
    assert all(m["suggested"] is None for m in items if m["source"] == "hub")
    # a second look reuses the copy
    stamp = (dest / "model.safetensors").stat().st_mtime_ns
    assert client.get("/api/models").json()["items"][0]["id"] == demo["id"]
    assert (dest / "model.safetensors").stat().st_mtime_ns == stamp


def test_demo_entry_says_what_to_do_before_it_is_built(client, offline, monkeypatch, tmp_path):
    monkeypatch.setattr(catalog, "DEMO_SHIPPED", tmp_path / "no-shipped-weights")  # a checkout without them
    demo = client.get("/api/models").json()["items"][0]
    assert demo["source"] == "demo" and demo["status"] == "not_built"
    assert "studio models build demo" in demo["note"] and demo["suggested"] is None


def test_unreachable_hub_id_is_refused_at_launch_in_one_sentence(client, app, offline, tiny_paligemma):
    dest = _local_copy(app, tiny_paligemma)
    pid = make_project(client, app.state.settings, app.state.sessionmaker)
    r = client.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": config(HUB_ID)})
    assert r.status_code == 422, r.text
    msg = r.json()["detail"]
    assert msg.startswith(f"config.base_model: tried to load '{HUB_ID}' from the model hub, but the hub is "
                          "unreachable (HF_HUB_OFFLINE is set)")
    assert str(dest.resolve()) in msg and msg.count(". ") == 0  # one sentence naming the local model
    with session_scope(app.state.sessionmaker) as s:
        assert s.scalars(select(Run.id)).all() == []  # nothing queued
    # the catalogue's pick (its id and family) launches at once: no dry run, no hub
    pick = next(m for m in client.get("/api/models").json()["items"] if m["source"] == "local")
    r = client.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": config(
        pick["id"], family=pick["family"])})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "queued" and r.json()["config"]["base_model"] == str(dest.resolve())


def test_hub_that_does_not_answer_is_refused_without_the_offline_flag(client, app, monkeypatch, tmp_path,
                                                                      tiny_paligemma):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    port = _closed_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    pid = make_project(client, app.state.settings, app.state.sessionmaker)
    r = client.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": config(HUB_ID)})
    assert r.status_code == 422, r.text
    assert f"127.0.0.1:{port} did not answer" in r.json()["detail"]
    assert "no local model exists yet" in r.json()["detail"]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_worker_fails_fast_when_the_hub_went_away_after_the_launch(client, app, monkeypatch, tmp_path,
                                                                  tiny_paligemma):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    hub = socket.socket()  # a "hub" that accepts connections while the run is launched
    hub.bind(("127.0.0.1", 0))
    hub.listen()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{hub.getsockname()[1]}")
    pid = make_project(client, app.state.settings, app.state.sessionmaker)
    r = client.post(f"/api/projects/{pid}/runs", json={"kind": "train", "config": config(HUB_ID)})
    assert r.status_code == 201, r.text
    hub.close()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert execute(r.json()["id"], app.state.settings) == "failed"
    v = client.get(f"/api/runs/{r.json()['id']}").json()
    assert "the hub is unreachable (HF_HUB_OFFLINE is set)" in v["error"]
    assert v["phase"] == "starting" and v["step"] == 0  # before any loading or training


def test_cli_models_list_and_import(monkeypatch, tmp_path, offline, tiny_paligemma):
    from tests.conftest import cli_runner

    monkeypatch.setenv("COLUMNS", "300")  # error boxes unwrapped
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    invoke = cli_runner(monkeypatch, tmp_path / "data", url)
    r = invoke("models", "import", tiny_paligemma, "--name", "pali-copy")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "data" / "models" / "pali-copy" / "config.json").is_file()
    again = invoke("models", "import", tiny_paligemma, "--name", "pali-copy")
    assert again.exit_code != 0 and "exists already" in again.output
    bad = invoke("models", "import", tmp_path)
    assert bad.exit_code != 0 and "not a save_pretrained folder" in bad.output
    out = invoke("models", "list").output
    assert "pali-copy" in out and "needs the model hub or a local copy" in out
    assert out.splitlines()[0].startswith("ready      demo")  # the shipped demo base, ready at once
    items = json.loads(invoke("models", "list", "--json").output)
    assert any(m["name"] == "pali-copy" and m["family"] == "paligemma" for m in items)
