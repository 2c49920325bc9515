"""Team: an admin creates a user, issues a token (shown once), the user signs in with it; the admin
lists and revokes the user's tokens; non-admins cannot."""
from __future__ import annotations

from tests.api.conftest import auth


def test_admin_issues_and_revokes_a_new_users_token(client, project):
    r = client.post("/api/users", json={"username": "bea"})
    assert r.status_code == 201
    uid = r.json()["id"]
    issued = client.post(f"/api/users/{uid}/tokens", json={"name": "laptop"})
    assert issued.status_code == 201
    tok = issued.json()["token"]
    assert tok.startswith("vs_") and issued.json()["prefix"] == tok[:10]
    # the new user signs in with it
    assert client.get("/api/auth/me", headers=auth(tok)).json()["username"] == "bea"
    listed = client.get(f"/api/users/{uid}/tokens")
    assert listed.status_code == 200
    assert [(t["name"], t["prefix"]) for t in listed.json()] == [("laptop", tok[:10])]
    assert "token" not in listed.json()[0]  # shown once, never again
    # not an admin: no access to others' tokens
    assert client.get(f"/api/users/{uid}/tokens", headers=auth(tok)).status_code == 403
    assert client.delete(f"/api/users/{uid}/tokens/{listed.json()[0]['id']}", headers=auth(tok)).status_code == 403
    # a token of another user, or none: 404 naming both
    r = client.delete(f"/api/users/{uid + 99}/tokens/{listed.json()[0]['id']}")
    assert r.status_code == 404 and "token" in r.json()["detail"]
    assert client.get(f"/api/users/{uid + 99}/tokens").status_code == 404
    assert client.delete(f"/api/users/{uid}/tokens/{listed.json()[0]['id']}").status_code == 204
    assert client.get("/api/auth/me", headers=auth(tok)).status_code == 401
    assert client.get(f"/api/users/{uid}/tokens").json() == []
