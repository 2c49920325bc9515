"""Auth: tokens required everywhere but health, users by admins, own tokens, hashed at rest."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from backend.models import ApiToken
from tests.api.conftest import auth


def test_health_needs_no_token(client):
    assert client.get("/api/health", headers={"Authorization": ""}).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer vs_not-a-token"}, {"Authorization": "Basic abc"}])
@pytest.mark.parametrize("method,url", [("GET", "/api/auth/me"), ("GET", "/api/projects"),
                                        ("POST", "/api/projects"), ("GET", "/api/images/1"),
                                        ("DELETE", "/api/boxes/1?version=1")])
def test_routes_need_a_valid_token(client, headers, method, url):
    client.headers.pop("Authorization")
    r = client.request(method, url, headers=headers, json={"name": "x"} if method == "POST" else None)
    assert r.status_code == 401, r.text
    assert "token" in r.json()["detail"]


def test_me_and_users(client, make_user):
    me = client.get("/api/auth/me").json()
    assert me["username"] == "admin" and me["is_admin"] is True
    bob = make_user("bob")
    assert client.get("/api/auth/me", headers=bob).json()["username"] == "bob"
    # Only platform admins manage users.
    assert client.post("/api/users", json={"username": "eve"}, headers=bob).status_code == 403
    assert client.get("/api/users", headers=bob).status_code == 403
    assert client.post("/api/users/1/tokens", json={}, headers=bob).status_code == 403
    assert [u["username"] for u in client.get("/api/users").json()] == ["admin", "bob"]
    r = client.post("/api/users", json={"username": "bob"})
    assert r.status_code == 409 and "bob" in r.json()["detail"]
    assert client.post("/api/users/999/tokens", json={}).status_code == 404


@pytest.mark.parametrize("name", ["", "   ", "a b", "x" * 65, "../root"])
def test_bad_usernames_are_422(client, name):
    r = client.post("/api/users", json={"username": name})
    assert r.status_code == 422
    assert "username" in str(r.json()["detail"])


def test_own_tokens_create_list_revoke(client, app, make_user):
    bob = make_user("bob")
    r = client.post("/api/auth/tokens", json={"name": "laptop"}, headers=bob)
    assert r.status_code == 201
    new = r.json()
    assert new["token"].startswith("vs_") and new["name"] == "laptop"
    listed = client.get("/api/auth/tokens", headers=bob).json()
    assert [t["name"] for t in listed] == ["test", "laptop"]
    assert all("token" not in t for t in listed)  # plaintext shown once only
    # Hashed at rest: the plaintext appears nowhere in the table.
    with app.state.sessionmaker() as s:
        rows = s.scalars(select(ApiToken)).all()
        assert all(new["token"] not in (t.token_hash, t.prefix, t.name) for t in rows)
        assert any(len(t.token_hash) == 64 for t in rows)
    assert client.get("/api/auth/me", headers=auth(new["token"])).status_code == 200
    # Someone else's token cannot be revoked (it does not exist for them).
    admin_tok = client.get("/api/auth/tokens").json()[0]["id"]
    assert client.delete(f"/api/auth/tokens/{admin_tok}", headers=bob).status_code == 404
    assert client.delete(f"/api/auth/tokens/{new['id']}", headers=bob).status_code == 204
    assert client.get("/api/auth/me", headers=auth(new["token"])).status_code == 401
    assert client.get("/api/auth/me", headers=bob).status_code == 200
