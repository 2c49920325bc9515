"""QA review in Chromium: generate from the page, each pair beside its image with the boxes it
refers to, filter by family, edit, mark reviewed, delete — every write checked through the API."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import shot
from tests.e2e.helpers import assert_accessible, png
from tests.e2e.test_editor import sign_in, wait_for


def test_qa_generate_review_edit_delete(page, studio):
    api = studio.api()
    p = api.post("/api/projects", json={"name": "QA", "labels": [{"name": "kart"}, {"name": "banana"}]}).json()
    pid, (kart, banana) = p["id"], [l["id"] for l in p["labels"]]
    files = [("files", (f"f{i}.png", png(seed=i), "image/png")) for i in range(2)]
    imgs = api.post(f"/api/projects/{pid}/images", files=files).json()["images"]
    for im in imgs:
        for lab, box in ((kart, (30, 40, 140, 150)), (kart, (180, 60, 300, 200)), (banana, (100, 170, 150, 220))):
            r = api.post(f"/api/images/{im['id']}/boxes", json=dict(zip(("label_id", "x1", "y1", "x2", "y2"), (lab, *box))))
            assert r.status_code == 201, r.text

    sign_in(page, studio.token)
    page.goto(f"/projects/{pid}/qa")
    expect(page.get_by_text("0 pairs")).to_be_visible()
    page.get_by_text("Generate question/answer pairs").click()
    for fam in ("identity", "race", "detection"):
        page.get_by_label(fam, exact=True).uncheck()
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Generated")
    total = api.get(f"/api/projects/{pid}/qa", params={"limit": 1}).json()["total"]
    assert total > 0
    expect(page.get_by_text(re.compile(rf"^{total} pairs"))).to_be_visible()

    # Filter to the counting family; every pair shows its image and the boxes it refers to.
    page.get_by_label("Family").select_option("counting")
    counting = api.get(f"/api/projects/{pid}/qa", params={"family": "counting", "limit": 500}).json()
    expect(page.get_by_text(re.compile(rf"^{counting['total']} pairs"))).to_be_visible()
    first = counting["items"][0]
    item = page.locator(f"[data-qa-id='{first['id']}']")
    # grouped per image (issue 13): the image and every box its pairs refer to, numbered, once per image
    group = page.locator(f"li.qa-group[data-image-id='{first['image_id']}']")
    expect(group.locator("img")).to_be_visible()
    expect(group.locator("svg.overlay g[data-tag]")).to_have_count(
        len({tuple(round(b[k]) for k in ("x1", "y1", "x2", "y2")) + (b["label"],) for q in counting["items"]
             if q["image_id"] == first["image_id"] for b in q["params"]["boxes"]}))
    expect(item.get_by_test_id("display-question")).to_have_text(first["display_question"])
    page.get_by_label("Family").select_option("region")
    region = api.get(f"/api/projects/{pid}/qa", params={"family": "region", "limit": 1}).json()["items"][0]
    rgroup = page.locator(f"li.qa-group[data-image-id='{region['image_id']}']")
    expect(rgroup.locator("svg.overlay rect[stroke-dasharray]")).not_to_have_count(0)  # the region, dashed
    shot(page, "20-qa")
    assert_accessible(page)

    # Edit the answer, mark reviewed, delete.
    page.get_by_label("Family").select_option("counting")
    item.get_by_label("Answer").fill("seven")
    item.get_by_role("button", name="Save").click()
    wait_for(lambda: api.get(f"/api/projects/{pid}/qa", params={"family": "counting", "limit": 1}).json()["items"][0]["answer"]
             == "seven", what="answer saved")
    item.get_by_label("Reviewed").check()
    wait_for(lambda: api.get(f"/api/projects/{pid}/qa", params={"reviewed": True}).json()["total"] == 1, what="reviewed")
    got = api.get(f"/api/projects/{pid}/qa", params={"reviewed": True}).json()["items"][0]
    assert got["id"] == first["id"] and got["source"] == "human"
    second = counting["items"][1]["id"]
    page.locator(f"[data-qa-id='{second}']").get_by_role("button", name="Delete").click()
    expect(page.locator(f"[data-qa-id='{second}']")).to_have_count(0)
    assert api.get(f"/api/projects/{pid}/qa", params={"family": "counting"}).json()["total"] == counting["total"] - 1
    shot(page, "21-qa-edited")
