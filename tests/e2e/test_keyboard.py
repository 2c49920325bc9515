"""Keyboard only: sign in, reach a thumbnail with Tab, open it with Enter, pick a label and
review the image from the editor's keys — no mouse."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.helpers import png, tab_to


def test_keyboard_only_path(page, studio):
    api = studio.api()
    p = api.post("/api/projects", json={"name": "Keys", "labels": [{"name": "kart"}, {"name": "flag"}]}).json()
    imgs = api.post(f"/api/projects/{p['id']}/images", files=[("files", (f"k{i}.png", png(seed=i), "image/png")) for i in range(2)]).json()["images"]
    box = api.post(f"/api/images/{imgs[0]['id']}/boxes", json={"label_id": p["labels"][0]["id"], "x1": 10, "y1": 10, "x2": 60, "y2": 60}).json()

    page.goto("/")
    # The field takes focus once the app has rendered: typing before that would lose keys on a busy machine.
    expect(page.get_by_label("API token")).to_be_focused()
    page.keyboard.type(studio.token)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()

    page.goto(f"/projects/{p['id']}")
    link = page.get_by_role("link", name=re.compile("Open k0.png"))
    expect(link).to_be_visible()
    tab_to(page, link, 40)
    expect(link).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/images/{imgs[0]['id']}\b"))

    # Select the box from the list with the keyboard, relabel it with digit 2, nudge it.
    item = page.get_by_role("button", name=re.compile(r"kart 10,10"))
    tab_to(page, item, 60)
    expect(item).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("2")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_test_id("save-state")).to_have_text("all changes saved")
    got = api.get(f"/api/boxes/{box['id']}").json()
    assert got["label_id"] == p["labels"][1]["id"] and got["y1"] == 11 and got["version"] == 3
