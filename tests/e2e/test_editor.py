"""The main path in a real Chromium against the real studio: sign in, create a project with labels,
upload images, draw a box with the mouse, relabel it with a hotkey, survive a 409 from a second
client both ways, delete + undo, accept with Enter. Every write is checked through the REST API."""
from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from tests.e2e.conftest import shot
from tests.e2e.helpers import assert_accessible, write_pngs


def wait_for(fn, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}; last value {v!r}")
        time.sleep(0.1)


def sign_in(page, token):
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()


def image_to_screen(page, w, h):
    """Map original-image pixels to page coordinates from where the <image> is drawn right now."""
    bb = page.locator("[data-testid=canvas] image").bounding_box()
    return lambda x, y: (bb["x"] + x * bb["width"] / w, bb["y"] + y * bb["height"] / h)


def drag(page, a, b):
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, steps=4)
    page.mouse.move(*b, steps=4)
    page.mouse.up()


def saved(page):
    expect(page.get_by_test_id("save-state")).to_have_text("all changes saved")


def test_sign_in_create_upload_draw_relabel_conflict(page, studio, tmp_path):
    api = studio.api()
    page.goto("/")
    shot(page, "01-sign-in")
    assert_accessible(page)
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid API token")
    sign_in(page, studio.token)

    # Create a project with two labels (hotkeys 1 and 2).
    page.get_by_label("Name", exact=True).fill("Karts e2e")
    page.get_by_label("Label 1 name").fill("kart")
    page.get_by_role("button", name="Add label").click()
    page.get_by_label("Label 2 name").fill("banana")
    shot(page, "02-projects-new")
    assert_accessible(page)
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(re.compile(r"/projects/\d+$"))
    pid = int(page.url.rsplit("/", 1)[1])
    labels = {l["name"]: l for l in api.get(f"/api/projects/{pid}").json()["labels"]}
    assert labels["kart"]["hotkey"] == "1" and labels["banana"]["hotkey"] == "2"

    # Upload three images through the import dialog (plain images).
    files = write_pngs(tmp_path / "imgs", 3)
    page.get_by_role("button", name="Import…").click()
    page.get_by_label("Files (images, annotation files, or one zip)").set_input_files([str(f) for f in files])
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_contain_text("Added 3 image(s)")
    shot(page, "03-import-done")
    page.get_by_role("button", name="Close").click()
    expect(page.locator(".cell[data-image-id]")).to_have_count(3)
    expect(page.locator(".cell img")).to_have_count(3)  # thumbnails fetched with the token
    shot(page, "04-dataset")
    assert_accessible(page)
    images = api.get(f"/api/projects/{pid}/images").json()["items"]
    assert [i["file_name"] for i in images] == ["frame_000.png", "frame_001.png", "frame_002.png"]
    iid = images[0]["id"]

    # Open the editor on the first image and draw a box with the mouse.
    page.get_by_role("link", name=re.compile("Open frame_000.png")).click()
    page.wait_for_url(re.compile(rf"/images/{iid}\b"))
    expect(page.locator("[data-testid=canvas] image")).to_have_count(1)
    page.wait_for_function("() => document.querySelector('[data-testid=canvas] image').getBoundingClientRect().width > 100")
    to = image_to_screen(page, 320, 240)
    drag(page, to(40, 50), to(160, 150))
    saved(page)
    boxes = wait_for(lambda: api.get(f"/api/images/{iid}").json()["boxes"], what="the drawn box in the API")
    assert len(boxes) == 1
    b = boxes[0]
    assert b["label_id"] == labels["kart"]["id"] and b["source"] == "human"
    for k, v in (("x1", 40), ("y1", 50), ("x2", 160), ("y2", 150)):
        assert abs(b[k] - v) <= 1.0, (k, b[k], v)
    shot(page, "05-editor-box")
    assert_accessible(page)

    # Hotkey 2 relabels the selected box.
    page.keyboard.press("2")
    saved(page)
    b = wait_for(lambda: (x := api.get(f"/boxes/{b['id']}".join(["/api", ""])).json()) and x["label_id"] == labels["banana"]["id"] and x,
                 what="relabel to banana")
    assert b["version"] == 2

    # Arrow nudges by 1 px, Shift+arrow by 10 px.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    saved(page)
    b2 = api.get(f"/api/boxes/{b['id']}").json()
    assert (b2["x1"], b2["y1"]) == (b["x1"] + 1, b["y1"] + 10) and b2["version"] == 4

    # A second client moves the box; moving it in the browser now meets a 409 -> keep mine.
    theirs = api.patch(f"/api/boxes/{b['id']}", json={"version": b2["version"], "x1": 10, "x2": 100}).json()
    assert theirs["version"] == 5
    to = image_to_screen(page, 320, 240)
    mid = ((b2["x1"] + b2["x2"]) / 2, (b2["y1"] + b2["y2"]) / 2)
    drag(page, to(*mid), to(mid[0] + 20, mid[1]))
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("theirs")).to_contain_text("(10, ")
    shot(page, "06-conflict")
    mine_x1 = b2["x1"] + 20
    dialog.get_by_role("button", name="Keep mine").click()
    saved(page)
    now = wait_for(lambda: (x := api.get(f"/api/boxes/{b['id']}").json())["version"] == 6 and x, what="keep mine saved")
    assert abs(now["x1"] - mine_x1) <= 1.0 and abs(now["x2"] - (b2["x2"] + 20)) <= 1.0

    # Again, and this time take theirs: the server keeps their box, the editor shows it.
    theirs = api.patch(f"/api/boxes/{b['id']}", json={"version": 6, "x1": 5, "x2": 50}).json()
    page.keyboard.press("ArrowLeft")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Take theirs").click()
    expect(dialog).to_be_hidden()
    saved(page)
    assert api.get(f"/api/boxes/{b['id']}").json() == theirs
    expect(page.locator(f"rect[data-box-id='{b['id']}']")).to_have_attribute("x", "5")

    # Delete, then undo: the box comes back (a new id, same geometry), then redo deletes it again.
    page.keyboard.press("Delete")
    saved(page)
    wait_for(lambda: api.get(f"/api/images/{iid}").json()["boxes"] == [], what="delete saved")
    page.keyboard.press("Control+z")
    saved(page)
    back = wait_for(lambda: api.get(f"/api/images/{iid}").json()["boxes"], what="undo re-creates")
    assert [(x["x1"], x["x2"], x["label_id"]) for x in back] == [(5, 50, labels["banana"]["id"])]
    page.keyboard.press("Control+Shift+z")
    saved(page)
    wait_for(lambda: api.get(f"/api/images/{iid}").json()["boxes"] == [], what="redo deletes")
    page.keyboard.press("Control+z")
    saved(page)
    wait_for(lambda: len(api.get(f"/api/images/{iid}").json()["boxes"]) == 1, what="undo again")

    # Enter accepts (unlabeled -> in_review -> accepted) and moves on to the next image.
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/images/{images[1]['id']}\b"))
    assert api.get(f"/api/images/{iid}").json()["status"] == "accepted"
    # X rejects the second one (Backspace only deletes boxes); ← (no box selected) goes back.
    expect(page.get_by_test_id("image-status")).to_have_text("unlabeled")
    page.keyboard.press("x")
    page.wait_for_url(re.compile(rf"/images/{images[2]['id']}\b"))
    assert api.get(f"/api/images/{images[1]['id']}").json()["status"] == "rejected"
    # the editor knows where it is in the list before ← (else ← can run from a stale position)
    expect(page.get_by_test_id("image-counter")).to_contain_text("image 3 of")
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(re.compile(rf"/images/{images[1]['id']}\b"))
    shot(page, "07-editor-next")
