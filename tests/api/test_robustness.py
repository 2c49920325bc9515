"""Issue 11 regressions, each on SQLite and PostgreSQL: oversized ids, NUL bytes, download names,
deep JSON, concurrent QA regeneration and label creation, image checks, timestamps, the error
answers of the OpenAPI schema, and by hand the two operations the fuzzer leaves out."""
from __future__ import annotations

import io
import threading

import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from tests.api.conftest import auth, image_bytes

HUGE = "99999999999999999999"  # past SQLite's 64-bit integers
INT32_PLUS = 3238112216  # past PostgreSQL's integer columns


def _rows(app) -> dict:
    from sqlalchemy import func, select

    from backend.models import Box, Image, Label, Project, QAPair

    with app.state.sessionmaker() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in (Project, Label, Image, Box, QAPair)}


def _loc_of(r) -> list:
    return [e["loc"] for e in r.json()["detail"]]


@pytest.fixture
def seeded(client, project, upload):
    pid = project["id"]
    img = upload(pid, {"a.png": image_bytes(), "b.png": image_bytes(color=(1, 2, 3))}).json()["images"][0]["id"]
    box = client.post(f"/api/images/{img}/boxes", json={"label_id": project["labels"][0]["id"],
                                                         "x1": 1, "y1": 1, "x2": 9, "y2": 9}).json()
    return pid, img, box


# ---------------------------------------------------------------- 1. oversized ids
@pytest.mark.parametrize("method,path", [
    ("GET", f"/api/projects/{HUGE}/images"), ("GET", f"/api/projects/{INT32_PLUS}"),
    ("GET", f"/api/images/{INT32_PLUS}"), ("GET", f"/api/boxes/{HUGE}"), ("DELETE", f"/api/qa/{INT32_PLUS}"),
    ("GET", f"/api/runs/{INT32_PLUS}/predictions"), ("DELETE", f"/api/auth/tokens/{HUGE}"),
    ("GET", f"/api/runs/{INT32_PLUS}/events"),
])
def test_oversized_path_ids_are_422(client, method, path):
    r = client.request(method, path)
    assert r.status_code == 422, r.text
    assert "less than or equal to 2147483647" in r.text


def test_oversized_query_and_body_ids_are_422(client, app, seeded):
    pid, img, box = seeded
    before = _rows(app)
    r = client.get(f"/api/projects/{pid}/qa", params={"image_id": INT32_PLUS})
    assert r.status_code == 422 and ["query", "image_id"] in _loc_of(r)
    r = client.post(f"/api/images/{img}/boxes", json={"label_id": INT32_PLUS, "x1": 1, "y1": 1, "x2": 5, "y2": 5})
    assert r.status_code == 422 and ["body", "label_id"] in _loc_of(r)
    r = client.patch(f"/api/boxes/{box['id']}", json={"version": INT32_PLUS, "x1": 2})
    assert r.status_code == 422 and ["body", "version"] in _loc_of(r)
    r = client.delete(f"/api/boxes/{box['id']}", params={"version": HUGE})
    assert r.status_code == 422 and ["query", "version"] in _loc_of(r)
    r = client.patch(f"/api/projects/{pid}/images", json={"ids": [img, INT32_PLUS], "split": "train"})
    assert r.status_code == 422 and ["body", "ids", 1] in _loc_of(r)
    r = client.post(f"/api/projects/{pid}/members", json={"user_id": INT32_PLUS, "role": "viewer"})
    assert r.status_code == 422 and ["body", "user_id"] in _loc_of(r)
    r = client.get(f"/api/projects/{pid}/runs", params={"offset": HUGE})
    assert r.status_code == 422
    # The grid's label filter takes an id or a name: a huge number is neither, not a driver overflow.
    r = client.get(f"/api/projects/{pid}/images", params={"label": HUGE})
    assert r.status_code == 422 and HUGE in r.json()["detail"]
    assert _rows(app) == before
    # In range but absent: simply not found.
    assert client.get("/api/projects/2147483647").status_code == 404


# ---------------------------------------------------------------- 2. NUL bytes
@pytest.mark.parametrize("how", ["project-name", "label-name", "meta-value", "meta-key", "q", "family", "label-query"])
def test_nul_bytes_are_422_naming_the_field(client, app, seeded, how):
    pid, img, _ = seeded
    before = _rows(app)
    r, loc = {
        "project-name": lambda: (client.post("/api/projects", json={"name": "p\u0000q"}), ["body", "name"]),
        "label-name": lambda: (client.post(f"/api/projects/{pid}/labels", json={"name": "ka\u0000rt"}), ["body", "name"]),
        "meta-value": lambda: (client.patch(f"/api/images/{img}", json={"meta": {"a": ["x", "y\u0000"]}}),
                               ["body", "meta", "a", 1]),
        "meta-key": lambda: (client.patch(f"/api/images/{img}", json={"meta": {"a\u0000": 1}}), ["body", "meta", "a\u0000"]),
        "q": lambda: (client.get(f"/api/projects/{pid}/images", params={"q": "a\u0000"}), ["query", "q"]),
        "family": lambda: (client.get(f"/api/projects/{pid}/qa", params={"family": "\u0000"}), ["query", "family"]),
        "label-query": lambda: (client.get(f"/api/projects/{pid}/images", params={"label": "k\u0000"}), ["query", "label"]),
    }[how]()
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc and "NUL" in r.json()["detail"][0]["msg"]
    assert _rows(app) == before
    assert client.get("/api/health").status_code == 200


def test_nul_in_an_uploaded_file_name_is_422(client, app, project, state):
    before = state()
    # Raw multipart: httpx would percent-encode the NUL in the file name.
    body = (b'--XyZ\r\nContent-Disposition: form-data; name="files"; filename="a\x00.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + image_bytes() + b"\r\n--XyZ--\r\n")
    r = client.post(f"/api/projects/{project['id']}/images", content=body,
                    headers={"Content-Type": "multipart/form-data; boundary=XyZ"})
    assert r.status_code == 422 and "NUL" in r.json()["detail"], r.text
    assert state() == before


# ---------------------------------------------------------------- 3. download names
def test_qa_export_download_names_are_built_from_validated_values(client, seeded):
    pid = seeded[0]
    r = client.get(f"/api/projects/{pid}/qa/export", params={"family": "\u226d"})
    assert r.status_code == 422 and "family" in r.json()["detail"]
    r = client.get(f"/api/projects/{pid}/qa/export", params={"family": 'a"; filename="evil.exe'})
    assert r.status_code == 422 and "evil" not in r.headers.get("content-disposition", "")
    r = client.get(f"/api/projects/{pid}/qa/export", params={"split": "\x10"})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == (f'attachment; filename="qa_project{pid}__.jsonl"; '
                                                f"filename*=UTF-8''qa_project{pid}_%10.jsonl")
    r = client.get(f"/api/projects/{pid}/qa/export", params={"split": 'tr"ain;x=\u00e9'})
    cd = r.headers["content-disposition"]
    assert r.status_code == 200 and cd.count("filename=") == 1 and '"' not in cd.split('filename="')[1][:-1].split('";')[0]
    assert "filename*=UTF-8''qa_project" in cd and "%C3%A9" in cd


def test_image_and_export_download_names_are_safe(client, project, upload):
    pid = project["id"]
    img = upload(pid, {"k\u00e4rt; x=1.png": image_bytes()}).json()["images"][0]["id"]
    cd = client.get(f"/api/images/{img}/file").headers["content-disposition"]
    assert cd == "inline; filename=\"k_rt_x_1.png\"; filename*=UTF-8''k%C3%A4rt%3B%20x%3D1.png"
    r = client.get(f"/api/projects/{pid}/export", params={"format": "coco", "split": "v\u00e4l"})
    assert r.status_code == 200
    assert r.headers["content-disposition"].endswith(f"filename*=UTF-8''project-{pid}-coco-v%C3%A4l.zip")


def test_content_disposition_builder():
    from backend.api.disposition import content_disposition

    assert content_disposition("run-3-adapter.zip") == 'attachment; filename="run-3-adapter.zip"'
    assert content_disposition('a"\r\nb') == "attachment; filename=\"a_b\"; filename*=UTF-8''a%22%0D%0Ab"
    assert content_disposition("\u226d") == "attachment; filename=\"download\"; filename*=UTF-8''%E2%89%AD"


# ---------------------------------------------------------------- 4. deep JSON
@pytest.mark.parametrize("levels", [70, 300, 5000])
def test_deeply_nested_meta_is_422(client, app, seeded, levels):
    pid, img, _ = seeded
    before = _rows(app)
    body = '{"meta": {"a": ' + "[" * levels + "]" * levels + "}}"
    r = client.patch(f"/api/images/{img}", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "nested deeper than 64 levels" in r.json()["detail"][0]["msg"]
    assert r.json()["detail"][0]["loc"][:3] == ["body", "meta", "a"] or r.json()["detail"][0]["loc"] == ["body"]
    assert client.get(f"/api/images/{img}").json()["meta"] == {}
    assert _rows(app) == before
    # 60 levels are fine.
    deep: list = []
    for _ in range(58):
        deep = [deep]
    assert client.patch(f"/api/images/{img}", json={"meta": {"a": deep}}).status_code == 200


# ---------------------------------------------------------------- 5. concurrent QA regeneration
def _in_threads(app, token: str, n: int, call) -> list:
    barrier = threading.Barrier(n)
    out: list = [None] * n

    def run(i: int) -> None:
        with TestClient(app) as c:
            c.headers.update(auth(token))
            barrier.wait()
            out[i] = call(c, i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def test_parallel_qa_regeneration_equals_one_run(client, app, admin_token, seeded):
    pid = seeded[0]
    body = {"families": ["counting", "identity", "spatial"], "seed": 3}
    one = client.post(f"/api/projects/{pid}/qa/generate", json=body)
    assert one.status_code == 200, one.text
    expected = _rows(app)["qa_pairs"]
    assert expected == one.json()["total"] > 0
    for _ in range(3):
        res = _in_threads(app, admin_token, 3, lambda c, i: c.post(f"/api/projects/{pid}/qa/generate", json=body))
        assert [r.status_code for r in res] == [200, 200, 200], [r.text for r in res]
        assert _rows(app)["qa_pairs"] == expected


# ---------------------------------------------------------------- 6. label names
def test_label_names_are_unique_after_case_folding(client, app, project):
    pid = project["id"]
    assert client.post(f"/api/projects/{pid}/labels", json={"name": "\u00c4pfel"}).status_code == 201
    for dup in ("\u00c4pfel", "\u00e4pfel", "A\u0308PFEL", " \u00e4pfel "):  # incl. a decomposed \u00c4
        r = client.post(f"/api/projects/{pid}/labels", json={"name": dup})
        assert r.status_code == 409 and "already exists" in r.json()["detail"], (dup, r.text)
    r = client.post("/api/projects", json={"name": "x", "labels": [{"name": "Stra\u00dfe"}, {"name": "STRASSE"}]})
    assert r.status_code == 409


def test_concurrent_label_creates_make_one_label(client, app, admin_token, project):
    pid = project["id"]
    names = ["ball", "Ball", "BALL", "ball", "bAll"]
    res = _in_threads(app, admin_token, 5,
                      lambda c, i: c.post(f"/api/projects/{pid}/labels", json={"name": names[i]}))
    codes = sorted(r.status_code for r in res)
    assert codes == [201, 409, 409, 409, 409], [r.text for r in res]
    labels = [lab["name"].lower() for lab in client.get(f"/api/projects/{pid}/labels").json()]
    assert labels.count("ball") == 1


def test_label_key_is_enforced_by_the_database(app, project):
    from sqlalchemy.exc import IntegrityError

    from backend.models import Label

    with app.state.sessionmaker() as s:
        s.add(Label(project_id=project["id"], name="KART"))
        with pytest.raises(IntegrityError):
            s.flush()


# ---------------------------------------------------------------- 8. smaller ones
def test_bomb_message_quotes_the_studio_setting(make_client):
    c = make_client(max_image_pixels=1000)
    pid = c.post("/api/projects", json={"name": "p"}).json()["id"]
    r = c.post(f"/api/projects/{pid}/images", files=[("files", ("big.png", image_bytes(100, 100), "image/png"))])
    assert r.status_code == 413 and "STUDIO_MAX_IMAGE_PIXELS" in r.json()["detail"] and "1000" in r.json()["detail"]


def test_image_errors_print_no_object_address(client, project, upload):
    r = upload(project["id"], {"a.png": b"just some text"})
    assert r.status_code == 422 and "a.png" in r.json()["detail"]
    assert " at 0x" not in r.json()["detail"] and "object" not in r.json()["detail"]


def test_timestamps_carry_a_timezone(client, seeded):
    from datetime import datetime

    pid, img, box = seeded
    stamps = [client.get("/api/auth/me").json()["created_at"], client.get(f"/api/projects/{pid}").json()["created_at"],
              client.get(f"/api/boxes/{box['id']}").json()["updated_at"], client.get(f"/api/images/{img}").json()["created_at"]]
    for s in stamps:
        assert datetime.fromisoformat(s.replace("Z", "+00:00")).utcoffset() is not None, s


def test_openapi_documents_the_error_answers(client):
    schema = client.get("/openapi.json").json()
    op = schema["paths"]["/api/projects/{project_id}/images"]["post"]
    assert {"401", "403", "404", "409", "413", "422"} <= set(op["responses"])
    detail = schema["components"]["schemas"]["HTTPValidationError"]["properties"]["detail"]
    assert {"type": "string"} in detail["anyOf"]
    # A 422 with a message (not a list) is what the schema allows.
    r = client.patch("/api/projects/1", json={"name": None})
    assert r.status_code in (404, 422)


# ---------------------------------------------------------------- EXIF (issue 10, the upload layer)
def _exif_jpeg(w: int, h: int, orientation: int) -> bytes:
    im = PILImage.new("RGB", (w, h), (10, 200, 10))
    im.paste((250, 0, 0), (0, 0, w // 4, h // 4))  # a red corner, to see where it went
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif, quality=95)
    return buf.getvalue()


def test_exif_rotated_upload_is_stored_upright(client, app, project, upload):
    r = upload(project["id"], {"rot.jpg": _exif_jpeg(80, 40, 6)})  # 6: rotate 90 deg clockwise to view
    assert r.status_code == 201, r.text
    item = r.json()["images"][0]
    assert (item["width"], item["height"]) == (40, 80)
    stored = PILImage.open(io.BytesIO(client.get(f"/api/images/{item['id']}/file").content))
    assert stored.size == (40, 80) and stored.getexif().get(0x0112, 1) == 1
    # The red corner, top-left before turning, is top-right of the upright image.
    assert stored.getpixel((36, 3))[0] > 200 and stored.getpixel((3, 3))[0] < 100
    # A box drawn on the upright pixels fits (the old size, 80x40, would refuse y2=70).
    box = {"label_id": project["labels"][0]["id"], "x1": 1, "y1": 50, "x2": 30, "y2": 70}
    assert client.post(f"/api/images/{item['id']}/boxes", json=box).status_code == 201


def test_exif_rotated_import_is_stored_upright(client, project):
    import json

    from tests.formats.helpers import post_import

    coco = {"images": [{"id": 1, "file_name": "rot.jpg", "width": 40, "height": 80}],
            "categories": [{"id": 1, "name": "kart"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 50, 20, 20]}]}
    r = post_import(client, project["id"], "coco", {"annotations.json": json.dumps(coco).encode(),
                                                    "rot.jpg": _exif_jpeg(80, 40, 6)})
    assert r.status_code == 200, r.text
    item = client.get(f"/api/projects/{project['id']}/images").json()["items"][0]
    assert (item["width"], item["height"]) == (40, 80)
    stored = PILImage.open(io.BytesIO(client.get(f"/api/images/{item['id']}/file").content))
    assert stored.size == (40, 80)


# ---------------------------------------------------------------- what the fuzzer leaves out, by hand
def test_token_revocation_by_hand(client, make_user):
    mine = client.post("/api/auth/tokens", json={"name": "spare"}).json()
    other = make_user("olga")
    theirs = client.get("/api/auth/tokens", headers=other).json()[0]["id"]
    assert client.delete(f"/api/auth/tokens/{theirs}").status_code == 404  # not mine: as if absent
    assert client.delete("/api/auth/tokens/-1").status_code == 404
    assert client.delete("/api/auth/tokens/2147483648").status_code == 422
    assert client.delete("/api/auth/tokens/x").status_code == 422
    assert client.delete(f"/api/auth/tokens/{mine['id']}").status_code == 204
    assert client.get("/api/auth/me", headers=auth(mine["token"])).status_code == 401
    assert client.get("/api/auth/me").status_code == 200
    assert client.delete(f"/api/auth/tokens/{mine['id']}", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_run_events_by_hand(client, make_user, project):
    assert client.get("/api/runs/12345/events").status_code == 404
    assert client.get("/api/runs/0/events").status_code == 404
    assert client.get("/api/runs/abc/events").status_code == 422
    assert client.get("/api/runs/1/events", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_every_id_in_the_schema_is_bounded(client):
    """Structural guard for routes added later: every integer id a request can carry (path, query,
    form or JSON body, `..._id` / `id` / `ids`) is declared within the 32-bit column range, so an
    oversized one is a 422 and never reaches the database driver."""
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    def ints(schema: dict):
        if "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        if schema.get("type") == "integer":
            yield schema
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in schema.get(key, []):
                yield from ints(sub)
        if schema.get("type") == "array" and "items" in schema:
            yield from ints(schema["items"])

    def is_id(name: str) -> bool:
        if name == "after_id":  # a keyset cursor compares, never looks up: any 64-bit value is fine
            return False
        return name == "id" or name.endswith("_id") or name.endswith("_ids") or name == "ids"

    unbounded = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            fields = [(p["name"], p.get("schema", {})) for p in op.get("parameters", [])]
            for content in op.get("requestBody", {}).get("content", {}).values():
                body = content.get("schema", {})
                if "$ref" in body:
                    body = schemas[body["$ref"].rsplit("/", 1)[1]]
                fields += list(body.get("properties", {}).items())
            for name, schema in fields:
                if is_id(name) and any(s.get("maximum", INT32_PLUS) > INT32_PLUS - 1 for s in ints(schema)):
                    unbounded.append(f"{method.upper()} {path}: {name}")
    assert not unbounded, unbounded
