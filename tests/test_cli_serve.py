"""`studio serve` on the embedded default: a real process, a fresh data dir, URL + token printed."""
import os
import re
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_on_embedded_default(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env["STUDIO_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert f"http://127.0.0.1:{port}/" in lines[0]
        token = re.search(r"admin API token: (\S+)", lines[1]).group(1)
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert (tmp_path / "data" / "studio.db").exists()
        r = httpx.get(f"http://127.0.0.1:{port}/api/projects", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/projects").status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_with_several_workers(tmp_path):
    """--workers 2: two uvicorn processes behind one port, each building the app from the environment."""
    from pathlib import Path

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env["STUDIO_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        proc.stdout.readline()
        token = re.search(r"admin API token: (\S+)", proc.stdout.readline()).group(1)
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}) as c:
            assert all(c.get("/api/projects").status_code == 200 for _ in range(10))

        def children(pid: int) -> list[int]:
            return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == pid]

        workers = [p for p in children(proc.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2
    finally:
        proc.terminate()
        proc.wait(20)


def _ppid(proc_dir) -> int | None:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_studio_script_keeps_stdout_for_the_command(tmp_path):
    """`./studio models list --json | jq` reads JSON only: the front-end build (when its sources
    changed) logs to stderr, and a second call does not rebuild."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(STUDIO_DATA_DIR=str(tmp_path / "data"), STUDIO_VENV=str(Path(sys.executable).parents[1]))
    for _ in range(2):
        res = subprocess.run(["bash", str(root / "studio"), "models", "list", "--json"], env=env,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert isinstance(json.loads(res.stdout), list)
    assert "vite" not in res.stderr  # the second call found the build current
