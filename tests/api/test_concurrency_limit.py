"""More requests in flight than the database pool has connections must queue, not deadlock.

A sync request holds its connection while it waits for a worker thread between its steps. With a
pool of 2 connections, 4 worker threads and 24 requests at once, every thread can end up waiting for
a connection held by a request that waits for a thread; the pool's timeout then answers 500. The
admission limit (backend/api/limit.py) lets as many requests in as there are connections."""
from __future__ import annotations

import anyio
import httpx
import pytest

import backend.db as db


def _burst(settings, n: int, *, limited: bool) -> list[int]:
    from backend.auth import bootstrap_admin
    from backend.db import session_scope
    from backend.main import create_app

    app = create_app(settings)
    if not limited:  # the app as it was before the limit: the middleware stack without it
        app.user_middleware = [m for m in app.user_middleware if m.cls.__name__ != "ConcurrencyLimit"]
    with session_scope(app.state.sessionmaker) as s:
        token = bootstrap_admin(s, settings.data_dir)

    async def main() -> list[int]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 4
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a 500, as a server answers
        codes: list[int] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                     headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            async def one() -> None:
                codes.append((await c.get("/api/projects")).status_code)

            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(one)
        return codes

    try:
        return anyio.run(main)
    finally:
        app.state.engine.dispose()


@pytest.fixture
def small_pool(monkeypatch):
    monkeypatch.setattr(db, "POOL_SIZE", 1)
    monkeypatch.setattr(db, "MAX_OVERFLOW", 1)
    monkeypatch.setattr(db, "POOL_TIMEOUT", 2.0)


def test_a_burst_larger_than_the_pool_queues_and_succeeds(settings, small_pool):
    codes = _burst(settings, 24, limited=True)
    assert codes == [200] * 24


def test_without_the_limit_the_same_burst_deadlocks_until_the_pool_times_out(settings, small_pool):
    """The failure the limit prevents, reproduced (so the test above is not vacuous)."""
    codes = _burst(settings, 24, limited=False)
    assert any(c >= 500 for c in codes), codes
