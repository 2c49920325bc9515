"""Issue 13 in a real Chromium, a few checks per browser session (each session costs seconds):
review status drives training and a safer editor. Every write is checked through the REST API."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import shot
from tests.e2e.helpers import png
from tests.e2e.test_runs_page import tiny_paligemma  # noqa: F401  (fixture)
from tests.e2e.test_editor import drag, image_to_screen, saved, sign_in, wait_for

W, H = 320, 240


def _project(api, name: str, n: int = 4) -> tuple[int, dict, list[int]]:
    p = api.post("/api/projects", json={"name": name, "labels": [{"name": "kart"}, {"name": "ball"}]}).json()
    labels = {lab["name"]: lab["id"] for lab in p["labels"]}
    files = [("files", (f"img{i}.png", png(W, H, seed=i), "image/png")) for i in range(n)]
    ids = [im["id"] for im in api.post(f"/api/projects/{p['id']}/images", files=files).json()["images"]]
    return p["id"], labels, ids


def at(page, iid: int, status: str) -> None:
    """The editor shows image `iid` (loaded: its status is on the page), ready for keys."""
    page.wait_for_url(re.compile(rf"/images/{iid}\b"))
    expect(page.get_by_test_id("image-status")).to_have_text(status)


def test_status_drives_runs_and_the_editor_is_safe(page, studio, tiny_paligemma):
    api = studio.api()
    pid, labels, ids = _project(api, "Review e2e")
    boxes = [api.post(f"/api/images/{ids[0]}/boxes", json={"label_id": labels["kart"], "x1": x, "y1": 40, "x2": x + 80,
                                                          "y2": 140}).json() for x in (20, 200)]
    assert api.patch(f"/api/projects/{pid}/images", json={"ids": ids[:2], "split": "train"}).status_code == 200
    assert api.patch(f"/api/projects/{pid}/images", json={"ids": ids[2:], "split": "test"}).status_code == 200
    sign_in(page, studio.token)

    # The editor opened from the grid's first tile: "image 1 of 4".
    page.goto(f"/projects/{pid}")
    expect(page.get_by_test_id("run-use")).to_contain_text("would use 4 images")
    page.get_by_role("link", name=re.compile(r"Open img0\.png")).click()
    page.wait_for_url(re.compile(rf"/images/{ids[0]}\b"))
    expect(page.get_by_test_id("image-counter")).to_have_text("image 1 of 4")
    expect(page.get_by_role("button", name="Reject (X)")).to_be_visible()

    # Backspace with a box selected deletes only that box; the image's status and page stay.
    page.locator(".box-list button").first.click()
    page.keyboard.press("Backspace")
    saved(page)
    wait_for(lambda: [b["id"] for b in api.get(f"/api/images/{ids[0]}").json()["boxes"]] == [boxes[1]["id"]],
             what="only the selected box deleted")
    assert api.get(f"/api/images/{ids[0]}").json()["status"] == "unlabeled"
    assert re.search(rf"/images/{ids[0]}\b", page.url)
    page.keyboard.press("Backspace")  # nothing selected now: nothing happens
    assert len(api.get(f"/api/images/{ids[0]}").json()["boxes"]) == 1

    # In Draw mode a drag inside an existing box moves it (no new box).
    expect(page.get_by_role("button", name="Draw (N)")).to_have_attribute("aria-pressed", "true")
    to = image_to_screen(page, W, H)
    drag(page, to(240, 90), to(250, 100))
    saved(page)
    got = wait_for(lambda: api.get(f"/api/images/{ids[0]}").json()["boxes"], what="box")
    assert len(got) == 1 and abs(got[0]["x1"] - 210) < 3 and abs(got[0]["y1"] - 50) < 3, got

    # Attributes panel: the selected box's attributes and the image meta, saved through the API.
    panel = page.get_by_role("group", name="Box attributes")
    panel.get_by_role("button", name="Add").click()
    panel.get_by_label("Box attributes key 1").fill("kart")
    panel.get_by_label("Box attributes value 1").fill("tux")
    panel.get_by_role("button", name="Save box attributes").click()
    wait_for(lambda: api.get(f"/api/images/{ids[0]}").json()["boxes"][0]["attributes"] == {"kart": "tux"},
             what="attributes saved")
    meta = page.get_by_role("group", name="Image meta")
    meta.get_by_role("button", name="Add").click()
    meta.get_by_label("Image meta key 1").fill("race_id")
    meta.get_by_label("Image meta value 1").fill("r7")
    meta.get_by_role("button", name="Save image meta").click()
    wait_for(lambda: api.get(f"/api/images/{ids[0]}").json()["meta"] == {"race_id": "r7"}, what="meta saved")
    shot(page, "13-editor-attributes")

    # ? lists every shortcut.
    page.keyboard.press("Escape")
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_contain_text("Delete / Backspace")
    expect(dialog).to_contain_text("reject the image")
    shot(page, "13-editor-shortcuts")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # Enter accepts and moves on; Ctrl+Z undoes the status change (and comes back to the image).
    page.keyboard.press("Enter")
    at(page, ids[1], "unlabeled")
    expect(page.get_by_test_id("image-counter")).to_have_text("image 2 of 4")
    assert api.get(f"/api/images/{ids[0]}").json()["status"] == "accepted"
    page.keyboard.press("Control+z")
    at(page, ids[0], "unlabeled")
    assert api.get(f"/api/images/{ids[0]}").json()["status"] == "unlabeled"
    shot(page, "13-editor-after-undo")

    # Accept two images (one per split) and reject one; a run launched with "only accepted" uses exactly those.
    page.keyboard.press("Enter")
    at(page, ids[1], "unlabeled")
    page.keyboard.press("x")
    at(page, ids[2], "unlabeled")
    page.keyboard.press("Enter")
    wait_for(lambda: api.get(f"/api/images/{ids[2]}").json()["status"] == "accepted", what="third accepted")
    assert api.get(f"/api/images/{ids[1]}").json()["status"] == "rejected"
    page.goto(f"/projects/{pid}/runs")
    page.get_by_label("Base model").fill(str(tiny_paligemma))  # a hub id is refused offline
    page.get_by_label("Images", exact=True).select_option("accepted")
    expect(page.get_by_text("a run would use 2 of 4 train+test images (accepted)")).to_be_visible()
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url(re.compile(rf"/projects/{pid}/runs/\d+$"))
    rid = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_test_id("run-data")).to_contain_text("2 images")
    expect(page.get_by_test_id("run-data")).to_contain_text("accepted")
    shot(page, "13-run-accepted-only")
    snap = api.get(f"/api/runs/{rid}").json()["snapshot"]
    assert snap == {**snap, "n_images": 2, "image_status": "accepted"}
    api.post(f"/api/runs/{rid}/cancel")


def test_team_member_signs_in_with_a_token_from_settings(page, browser, studio):
    api = studio.api()
    pid, _, _ = _project(api, "Team e2e", n=1)
    sign_in(page, studio.token)
    page.goto(f"/projects/{pid}/settings")
    team = page.locator("section", has=page.get_by_role("heading", name=re.compile("^Team")))
    team.get_by_label("New user").fill("newbie")
    team.get_by_role("button", name="Create user and issue token").click()
    token = team.get_by_test_id("new-token").inner_text().strip()
    assert token.startswith("vs_")
    expect(team.get_by_role("button", name="Copy token")).to_be_visible()
    expect(team.get_by_role("button", name=re.compile(r"Revoke newbie's token"))).to_be_visible()
    shot(page, "13-team-token-once")
    team.get_by_role("button", name="Done").click()
    expect(team.get_by_test_id("new-token")).to_have_count(0)  # shown once only

    ctx = browser.new_context(base_url=studio.url, viewport={"width": 1200, "height": 800})
    try:
        other = ctx.new_page()
        sign_in(other, token)
        expect(other.get_by_text("signed in as")).to_contain_text("newbie")
    finally:
        ctx.close()
    page.once("dialog", lambda d: d.accept())
    team.get_by_role("button", name=re.compile(r"Revoke newbie's token")).click()
    expect(team.get_by_role("button", name=re.compile(r"Revoke newbie's token"))).to_have_count(0)
    assert studio.api(token).get("/api/auth/me").status_code == 401


def test_split_page_assigns_by_race_with_no_leak(page, studio):
    api = studio.api()
    pid, _, ids = _project(api, "Splits e2e", n=12)
    for k, iid in enumerate(ids):  # 3 races of 4 frames, 2 tracks
        meta = {"race_id": f"r{k // 4}", "track": "lighthouse" if k < 8 else "hacienda"}
        assert api.patch(f"/api/images/{iid}", json={"meta": meta}).status_code == 200
    # a by-image split first: it leaks races
    assert api.post(f"/api/projects/{pid}/splits", json={"mode": "image", "ratios": {"train": 0.5, "test": 0.5},
                                                          "seed": 1}).status_code == 200
    sign_in(page, studio.token)
    page.goto(f"/projects/{pid}/splits")
    expect(page.get_by_test_id("current-leaks")).to_contain_text("Leak:")
    page.get_by_label("Split by").select_option("group")
    page.get_by_label("Ratios").fill("train=2, test=1")
    expect(page.get_by_role("button", name="Apply split")).to_be_disabled()  # preview first
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-leaks")).to_contain_text("No leak")
    assert int(page.get_by_test_id("preview-train").inner_text()) + int(page.get_by_test_id("preview-test").inner_text()) == 12
    shot(page, "13-splits-preview")
    page.get_by_role("button", name="Apply split").click()
    expect(page.get_by_text("Split applied")).to_be_visible()
    expect(page.get_by_test_id("current-leaks")).to_contain_text("No leak")
    assert api.get(f"/api/projects/{pid}/splits/check", params={"key": "race_id"}).json()["ok"] is True
    per_race: dict[str, set] = {}
    for im in api.get(f"/api/projects/{pid}/images", params={"limit": 50}).json()["items"]:
        race = api.get(f"/api/images/{im['id']}").json()["meta"]["race_id"]
        per_race.setdefault(race, set()).add(im["split"])
    assert all(len(s) == 1 for s in per_race.values()) and len(per_race) == 3
    # the grid filters by race and shows each tile's split and status with a legend
    page.goto(f"/projects/{pid}?meta_key=race_id&meta_value=r1")
    expect(page.get_by_text("4 images")).to_be_visible()
    expect(page.locator(".cell .split-tag")).to_have_count(4)
    expect(page.get_by_label("Status legend")).to_contain_text("rejected")
    shot(page, "13-grid-by-race")

    # Import dialog (same session): the format is detected from the files; when another format is
    # chosen and fails, the detected one is suggested; the report counts boxes per label.
    import json as _json
    coco = {"images": [{"id": 1, "file_name": "new1.png", "width": W, "height": H}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 40]},
                            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [300, 200, 40, 60]}],
            "categories": [{"id": 1, "name": "kart"}, {"id": 2, "name": "cone"}]}
    files = [{"name": "annotations.json", "mimeType": "application/json", "buffer": _json.dumps(coco).encode()},
             {"name": "new1.png", "mimeType": "image/png", "buffer": png(W, H, seed=9)}]
    page.goto(f"/projects/{pid}")
    page.get_by_role("button", name="Import…").click()
    dialog = page.get_by_role("dialog", name="Import")
    dialog.get_by_label(re.compile("^Files")).set_input_files(files)
    expect(dialog.get_by_test_id("detected")).to_have_text("coco")
    dialog.get_by_label("Format").select_option("voc")
    dialog.get_by_role("button", name="Upload").click()
    dialog.get_by_role("button", name="Use coco instead").click()
    expect(dialog.get_by_label("Format")).to_have_value("coco")
    dialog.get_by_role("button", name="Upload").click()
    report = dialog.get_by_test_id("import-report")
    expect(report).to_contain_text("kart")
    expect(report).to_contain_text("cone")
    expect(dialog).to_contain_text("clipped to the image: 1 box(es)")
    expect(dialog).to_contain_text("matched to the project's: kart")
    shot(page, "13-import-report")


def test_qa_review_page_bulk_placeholder_and_stale(page, studio):
    api = studio.api()
    pid, labels, ids = _project(api, "QA e2e", n=2)
    for iid in ids:
        for x in (20, 180):
            api.post(f"/api/images/{iid}/boxes", json={"label_id": labels["kart"], "x1": x, "y1": 40, "x2": x + 90, "y2": 150})
    assert api.post(f"/api/projects/{pid}/qa/generate", json={"families": ["counting", "detection"]}).status_code == 200
    total = api.get(f"/api/projects/{pid}/qa").json()["total"]
    sign_in(page, studio.token)
    # filters are kept in the URL
    page.goto(f"/projects/{pid}/qa?file=img0")
    expect(page.get_by_label("File name")).to_have_value("img0")
    shown = api.get(f"/api/projects/{pid}/qa", params={"file": "img0"}).json()
    expect(page.get_by_text(re.compile(rf"^{shown['total']} pairs"))).to_be_visible()
    expect(page.locator("li.qa-group")).to_have_count(1)
    page.get_by_role("button", name=re.compile(r"Mark all \d+ shown as reviewed")).click()
    wait_for(lambda: api.get(f"/api/projects/{pid}/qa", params={"reviewed": True}).json()["total"] == shown["total"],
             what="the page marked reviewed")
    assert api.get(f"/api/projects/{pid}/qa").json()["total"] == total
    # keyboard: J moves to the next pair, R toggles its reviewed flag
    page.get_by_label("File name").fill("img1")
    second = api.get(f"/api/projects/{pid}/qa", params={"file": "img1"}).json()["items"]
    expect(page.locator(f"[data-qa-id='{second[0]['id']}']")).to_be_visible()
    page.locator("h1").click()
    page.keyboard.press("j")
    page.keyboard.press("r")
    wait_for(lambda: api.get(f"/api/projects/{pid}/qa", params={"file": "img1", "reviewed": True}).json()["items"]
             and api.get(f"/api/projects/{pid}/qa", params={"file": "img1", "reviewed": True}).json()["items"][0]["id"]
             == second[1]["id"], what="R on the second pair")
    # a placeholder naming no box is refused with the reason
    item = page.locator(f"[data-qa-id='{second[0]['id']}']")
    item.get_by_label("Question").fill("What is in {box9}?")
    item.get_by_role("button", name="Save").click()
    expect(item.get_by_role("alert")).to_contain_text("{box9}")
    assert "{box9}" not in api.get(f"/api/projects/{pid}/qa", params={"file": "img1"}).json()["items"][0]["question"]
    # a box added: the image's pairs are stale; regenerate fixes them
    api.post(f"/api/images/{ids[1]}/boxes", json={"label_id": labels["kart"], "x1": 120, "y1": 10, "x2": 170, "y2": 60})
    page.get_by_label("Stale").select_option("true")
    expect(page).to_have_url(re.compile(r"stale=true"))
    expect(page.get_by_test_id("stale").first).to_be_visible()
    shot(page, "13-qa-stale")
    page.get_by_role("button", name="Regenerate stale pairs").click()
    expect(page.get_by_role("status")).to_contain_text("Regenerated the pairs of 1 image")
    expect(page.get_by_text(re.compile(r"^0 pairs"))).to_be_visible()
    assert api.get(f"/api/projects/{pid}/qa", params={"stale": True}).json()["total"] == 0
