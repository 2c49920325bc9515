"""e2e fixtures: the REAL studio (`python -m backend.cli serve`, embedded default, fresh data dir) as
a subprocess, the built front end, and Debian's Chromium driven by Playwright (never a browser
download). Screenshots go to test-output/screenshots/."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
DIST = FRONTEND / "dist"
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _newest_source_mtime() -> float:
    paths = [FRONTEND / n for n in ("index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json")]
    paths += [p for p in (FRONTEND / "src").rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in paths if p.exists())


def _npm(*args: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not on PATH: the e2e tests need it to build frontend/ (install Node 20+ and npm)")
    r = subprocess.run([npm, *args], cwd=FRONTEND, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        pytest.fail(f"`npm {' '.join(args)}` failed in frontend/:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")


@pytest.fixture(scope="session")
def frontend_dist() -> Path:
    """frontend/dist, rebuilt when it is missing or older than any source file."""
    index = DIST / "index.html"
    if not index.exists() or index.stat().st_mtime < _newest_source_mtime():
        if not (FRONTEND / "node_modules").is_dir():
            _npm("ci", "--no-audit", "--no-fund")
        _npm("run", "build")
    return DIST


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        msg = "Debian's chromium is not installed (apt-get install chromium); the e2e tests need /usr/bin/chromium"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Studio:
    url: str
    token: str
    env: dict | None = None  # the server's environment (its STUDIO_DATA_DIR): a worker shares it

    def api(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token or self.token}"}, timeout=30)


@pytest.fixture(scope="session")
def studio(frontend_dist, tmp_path_factory) -> Studio:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env["STUDIO_DATA_DIR"] = str(tmp_path_factory.mktemp("e2e-data"))
    log = open(tmp_path_factory.mktemp("e2e-log") / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        token = None
        deadline = time.monotonic() + 60
        while token is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"admin API token: (\S+)", line)
            token = m.group(1) if m else None
        if token is None:
            log.seek(0)
            pytest.fail(f"the studio did not print its admin token:\n{log.read()[-4000:]}")
        url = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the studio did not answer /api/health within 60 s")
        yield Studio(url, token, env)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def studio_worker(studio, tmp_path_factory):
    """A real `studio worker --queues gpu` beside the server (`serve` alone only queues runs, as
    `studio up` starts the worker): same data dir, so the same SQLite database and embedded broker.
    Started only by the tests that run something; killed with its children at the end."""
    log = tmp_path_factory.mktemp("e2e-worker") / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "worker", "--queues", "gpu"], cwd=ROOT,
                                env={**studio.env, "STUDIO_TORCH_THREADS": "1"}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, studio):
    """A fresh browser context (empty localStorage) on the studio; page errors fail the test."""
    ctx = browser.new_context(base_url=studio.url, viewport={"width": 1400, "height": 900}, accept_downloads=True)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)  # the 2 shared cores can be busy: 5 s is too tight
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
