"""Dataset grid in Chromium: only visible rows are rendered and fetched (1,500 images), filters,
status counts, multi-select + bulk edit, a readable import error, export download; project
settings (labels, members); deep links survive a reload (SPA fallback)."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import shot
from tests.e2e.helpers import assert_accessible, zip_of_pngs
from tests.e2e.test_editor import sign_in, wait_for

N = 1500


def make_project(api, name, n_images):
    p = api.post("/api/projects", json={"name": name, "labels": [{"name": "kart", "hotkey": "k"}]}).json()
    r = api.post(f"/api/projects/{p['id']}/images", files=[("files", ("imgs.zip", zip_of_pngs(n_images), "application/zip"))])
    assert r.status_code == 201, r.text
    return p


def test_grid_virtualised_filters_bulk_import_export(page, studio):
    api = studio.api()
    p = make_project(api, "Big grid", N)
    pid = p["id"]
    items = api.get(f"/api/projects/{pid}/images", params={"limit": 3}).json()["items"]
    kart = p["labels"][0]["id"]
    api.post(f"/api/images/{items[0]['id']}/boxes", json={"label_id": kart, "x1": 2, "y1": 2, "x2": 10, "y2": 12})

    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    sign_in(page, studio.token)
    page.goto(f"/projects/{pid}")
    expect(page.get_by_text(f"{N} images")).to_be_visible()
    expect(page.locator(".cell img").first).to_be_visible()
    rendered = page.locator(".cell[data-image-id]").count()
    assert 0 < rendered < 200, rendered  # only the visible rows (plus overscan)
    list_calls = [u for u in requests if re.search(rf"/api/projects/{pid}/images\?", u)]
    assert len(list_calls) == 1 and "offset=0" in list_calls[0] and "limit=120" in list_calls[0], list_calls
    # Thumbnails only for cells that were rendered: while the grid measures itself a few more rows
    # may mount for a frame, so the bound is the overscan-sized window, far below the N images.
    thumbs = {u for u in requests if u.endswith("/thumbnail")}
    assert len(thumbs) < 200, len(thumbs)
    # The box comes with the list item and is drawn over the thumbnail.
    expect(page.locator(f".cell[data-image-id='{items[0]['id']}'] svg rect")).to_have_count(1)
    shot(page, "10-grid-1500")
    assert_accessible(page)

    # Scroll to the end: the last page is fetched by offset, and the last image is shown.
    page.locator("[data-testid=grid]").evaluate("el => el.scrollTop = el.scrollHeight")
    expect(page.get_by_text(f"img_{N - 1:05d}.png")).to_be_visible()
    offsets = {int(m.group(1)) for u in requests if (m := re.search(r"images\?.*offset=(\d+)", u))}
    assert max(offsets) >= (N // 120) * 120 - 120 and len(offsets) <= 4, sorted(offsets)
    assert page.locator(".cell[data-image-id]").count() < 200

    # Filter by file name and by has-boxes.
    filters = page.get_by_role("search")
    filters.get_by_label("File name").fill("img_0001")
    expect(page.get_by_text("10 images")).to_be_visible()  # img_00010 .. img_00019
    filters.get_by_label("File name").fill("")
    filters.get_by_label("Boxes").select_option("true")
    expect(page.get_by_text("1 images")).to_be_visible()
    filters.get_by_label("Boxes").select_option("")
    expect(page.get_by_text(f"{N} images")).to_be_visible()

    # Multi-select two images, set their split and status in bulk.
    page.get_by_label("Select img_00001.png").check()
    page.get_by_label("Select img_00002.png").check()
    bulk = page.get_by_role("region", name="Selected images")
    expect(bulk).to_contain_text("2 selected")
    shot(page, "11-grid-selected")
    bulk.get_by_label("Split").fill("val")
    bulk.get_by_role("button", name="Set split").click()
    expect(bulk).to_be_hidden()
    got = api.get(f"/api/projects/{pid}/images", params={"split": "val"}).json()
    assert sorted(i["file_name"] for i in got["items"]) == ["img_00001.png", "img_00002.png"]
    page.get_by_label("Select img_00001.png").check()
    bulk.get_by_label("Status").select_option("in_review")
    bulk.get_by_role("button", name="Set status").click()
    expect(page.get_by_role("button", name=re.compile(r"in review 1"))).to_be_visible()
    page.get_by_role("button", name=re.compile(r"in review 1")).click()
    expect(page.get_by_text("1 images")).to_be_visible()
    assert "status=in_review" in page.url

    # A bad import shows the server's reason, one line per problem, and imports nothing.
    page.get_by_role("button", name="Import…").click()
    dialog = page.get_by_role("dialog", name="Import")
    dialog.get_by_label("Format").select_option("coco")
    dialog.get_by_label(re.compile("Files")).set_input_files(
        [{"name": "annotations.json", "mimeType": "application/json", "buffer": b"{not json"}])
    dialog.get_by_role("button", name="Upload").click()
    alert = dialog.get_by_role("alert")
    expect(alert).to_contain_text("Nothing was imported (HTTP 4")
    shot(page, "12-import-error")
    assert api.get(f"/api/projects/{pid}").json()["image_count"] == N
    dialog.get_by_role("button", name="Close").click()

    # Export downloads a zip.
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export").click()
    assert dl.value.suggested_filename == f"project-{pid}-coco.zip"
    with open(dl.value.path(), "rb") as f:
        assert f.read(2) == b"PK"


def test_settings_labels_members_and_deep_link(page, studio):
    api = studio.api()
    p = api.post("/api/projects", json={"name": "Settings", "labels": [{"name": "kart", "hotkey": "1"}]}).json()
    sign_in(page, studio.token)
    page.goto(f"/projects/{p['id']}/settings")  # a deep link: served by the SPA fallback
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Labels")).to_be_visible()

    page.get_by_label("Hotkey of label kart").fill("q")
    page.get_by_label("Colour of label kart").fill("#00ff00")
    page.get_by_role("button", name="Save").click()
    wait_for(lambda: api.get(f"/api/projects/{p['id']}").json()["labels"][0]["hotkey"] == "q", what="hotkey saved")
    assert api.get(f"/api/projects/{p['id']}").json()["labels"][0]["color"] == "#00ff00"
    page.get_by_label("New label").fill("banana")
    page.get_by_role("button", name="Add label").click()
    expect(page.get_by_label("Name of label banana")).to_be_visible()
    page.get_by_label("New label").fill("KART")  # a duplicate: the server says why
    page.get_by_role("button", name="Add label").click()
    expect(page.get_by_role("alert")).to_contain_text("already exists")

    page.get_by_label("Username").fill("alice")
    page.get_by_label("Role for the new member").select_option("viewer")
    page.get_by_role("button", name="Create user and add").click()
    expect(page.get_by_label("Role of alice")).to_have_value("viewer")
    page.get_by_label("Role of alice").select_option("annotator")
    wait_for(lambda: {m["username"]: m["role"] for m in api.get(f"/api/projects/{p['id']}/members").json()}.get("alice")
             == "annotator", what="role change")
    shot(page, "13-settings")
    assert_accessible(page)
    # Unknown API paths stay JSON 404s, not the app's HTML.
    for method in ("GET", "POST", "DELETE"):
        r = api.request(method, "/api/no-such-thing")
        assert r.status_code == 404 and r.json() == {"detail": "Not Found"}, method
    assert api.post("/projects/1").status_code == 405
