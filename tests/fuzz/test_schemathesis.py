"""Schemathesis against the real app (every operation of /openapi.json), on SQLite and PostgreSQL.

Each operation gets a fixed budget of generated requests, valid ones (positive) and invalid ones
(negative: wrong types, out-of-range ids, missing fields), sent with the admin's token into a
project that has labels, images, boxes and QA pairs, so small ids hit real rows. Every response
must be: below 500, of a status code the schema declares, and shaped as the schema says.

Not fuzzed (tested by hand in tests/api/test_robustness.py): revoking a token (the fuzzer would
revoke its own and turn every later request into a 401) and the run event stream (it never ends
while the run is live).
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import image_bytes

EXAMPLES = 20  # per operation and mode: 35 operations x 2 modes x 20 requests per database
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
NOT_FUZZED = {("DELETE", "/api/auth/tokens/{token_id}"), ("GET", "/api/runs/{run_id}/events")}


def _seed(client) -> None:
    p = client.post("/api/projects", json={"name": "fuzz", "labels": [{"name": "kart"}, {"name": "ball"}]}).json()
    pid, lid = p["id"], p["labels"][0]["id"]
    files = [("files", (f"img{i}.png", image_bytes(40, 30), "image/png")) for i in range(3)]
    ims = client.post(f"/api/projects/{pid}/images", files=files).json()["images"]
    for im in ims:
        r = client.post(f"/api/images/{im['id']}/boxes", json={"label_id": lid, "x1": 1, "y1": 2, "x2": 20, "y2": 25})
        assert r.status_code == 201, r.text
    r = client.post(f"/api/projects/{pid}/qa/generate", json={"families": ["counting", "identity"]})
    assert r.status_code == 200, r.text


@pytest.mark.slow
@pytest.mark.timeout(420)  # the time bound: ~1.5 min of CPU per database; a hang guard on a busy machine
def test_fuzz_every_operation(app, client, admin_token):
    _seed(client)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    auth = {"Authorization": f"Bearer {admin_token}"}
    failures: list[str] = []
    fuzzed = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in NOT_FUZZED:
            continue
        fuzzed += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            seen: list[str] = []

            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case):
                if len(seen) >= 3:
                    return  # enough evidence for this operation
                response = case.call(headers=auth)
                try:
                    case.validate_response(response, checks=CHECKS)
                except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - collected below, not shrunk
                    found = [ln.strip() for ln in str(e).splitlines() if ln.strip().startswith("- ")] or [str(e)[:200]]
                    seen.append(f"{op.method.upper()} {op.path} [{mode.value}] -> {response.status_code}: "
                                f"{' '.join(found)[:300]} | sent {case.path_parameters} "
                                f"{case.query} {str(case.body)[:120]!r} | got {response.text[:200]!r}")

            try:
                run()
            except Exception as e:  # a strategy that cannot generate (unsatisfiable) is a finding too
                if "Unsatisfiable" not in type(e).__name__:
                    seen.append(f"{op.method.upper()} {op.path} [{mode.value}]: {type(e).__name__}: {e}"[:400])
            failures += seen
    assert fuzzed >= 30, f"only {fuzzed} operations in the schema?"
    assert not failures, f"{len(failures)} failing responses:\n" + "\n".join(failures)
    # The fuzzer's token still works: nothing it sent revoked or broke it.
    assert client.get("/api/auth/me").status_code == 200
