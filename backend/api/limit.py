"""Admission control: at most `limit` API requests in flight, the others wait in the event loop.

Why: a sync FastAPI request holds its database connection while it waits for a worker thread
between steps (user lookup -> endpoint -> response), and threads are a fixed pool (anyio's 40).
With more requests in flight than connections, every thread could end up waiting for a connection
held by a request that waits for a thread: nothing moves until the pool's timeout answers 500
(measured with bench_load at 120 clients: 10 req/s, then 500s). Admitting no more requests than
the pool has connections (and fewer than the threads) means an admitted request always gets both.
The event streams are left out: they hold no connection between polls and may stay open for hours.
"""
from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send


class ConcurrencyLimit:
    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, anyio.Semaphore(max(1, limit))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/api/") or path.endswith("/events"):
            await self.app(scope, receive, send)
            return
        async with self.limit:
            await self.app(scope, receive, send)
