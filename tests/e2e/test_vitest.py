"""Runs the front end's Vitest suite (geometry, hotkeys, undo history, API client), so
`./studio test` runs every test with one command."""
import re
import shutil
import subprocess

import pytest

from tests.e2e.conftest import FRONTEND


def test_vitest_suite_passes():
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not on PATH: install Node 20+ and npm to run the front end's unit tests")
    if not (FRONTEND / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True, capture_output=True, timeout=600)
    r = subprocess.run([npm, "test", "--", "--run", "--reporter=verbose", "--no-color"], cwd=FRONTEND,
                       capture_output=True, text=True, timeout=600, env={**__import__("os").environ, "NO_COLOR": "1"})
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"vitest failed:\n{out[-6000:]}"
    m = re.search(r"Tests\s+(\d+) passed", out)
    assert m and int(m.group(1)) >= 30, f"expected the unit tests to run:\n{out[-3000:]}"
