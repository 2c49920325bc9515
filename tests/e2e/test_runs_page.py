"""The run launcher (written against the runs API contract, which has not landed yet): it renders,
its controls are labelled, and launching either opens the run page (API present) or says plainly
that the server has no runs API (no fake data)."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import shot
from tests.e2e.helpers import assert_accessible
from tests.e2e.test_editor import sign_in


def test_run_launcher(page, studio):
    p = studio.api().post("/api/projects", json={"name": "Runs", "labels": [{"name": "kart"}]}).json()
    sign_in(page, studio.token)
    page.goto(f"/projects/{p['id']}/runs")
    expect(page.get_by_role("heading", name="Launch a run")).to_be_visible()
    assert_accessible(page)
    shot(page, "30-runs-launch")
    has_api = studio.api().post(f"/api/projects/{p['id']}/runs", json={}).status_code != 404
    page.get_by_role("button", name="Launch").click()
    if has_api:
        page.wait_for_url(re.compile(rf"/projects/{p['id']}/runs/\d+$"))
        expect(page.get_by_role("heading", name=re.compile(r"Run \d+"))).to_be_visible()
    else:
        expect(page.get_by_role("alert")).to_contain_text("no runs API yet")
