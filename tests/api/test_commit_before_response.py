"""A 2xx is sent only after the transaction committed: a client's next request sees its write."""
from __future__ import annotations

import json

import anyio
from sqlalchemy import select

from backend.models import Label


def test_write_is_committed_before_the_response_starts(app, admin_token, project):
    seen_at_response_start = []

    async def call() -> None:
        body = json.dumps({"name": "seen-by-others"}).encode()
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": f"/api/projects/{project['id']}/labels", "raw_path": b"",
                 "query_string": b"", "root_path": "", "server": ("test", 80), "client": ("test", 1),
                 "headers": [(b"authorization", f"Bearer {admin_token}".encode()),
                             (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
        sent = False

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                assert message["status"] == 201
                # Another session (another connection) looks at the database at this moment.
                with app.state.sessionmaker() as s:
                    seen_at_response_start.append(s.scalar(select(Label.id).where(Label.name == "seen-by-others")))

        await app(scope, receive, send)

    anyio.run(call)
    assert seen_at_response_start and seen_at_response_start[0] is not None
