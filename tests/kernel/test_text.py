"""The kernel's text rule in a bare Litestar app that only calls `install_shared`, as a sibling service would.

The composed app's probes (both databases) are in tests/app/test_invalid_text.py; here the corners of the rule:
multipart forms, field names, deep and wide bodies, the request's cached JSON.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar import Litestar, Request, post
from litestar.config.app import AppConfig
from litestar.params import JSONBody
from litestar.plugins import InitPluginProtocol
from litestar.testing import TestClient

from shop_kernel import install_shared

INVALID_TEXT = "/problems/invalid-text"


class Shared(InitPluginProtocol):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        install_shared(app_config)
        return app_config


@post("/echo-json", status_code=200)
async def echo_json(request: Request[Any, Any, Any], data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    again = await request.json()  # decoded once, checked once, the same value
    assert again is await request.json()
    return {"keys": sorted(data)}


@post("/any-json", status_code=200)
async def any_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"type": type(await request.json()).__name__}


@post("/form", status_code=200)
async def read_form(request: Request[Any, Any, Any]) -> dict[str, Any]:
    form = await request.form()
    return {name: value if isinstance(value, str) else f"file:{value.filename}" for name, value in form.items()}


@post("/text", status_code=200)
async def read_text(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"characters": len((await request.body()).decode())}


@pytest.fixture(scope="module")
def client() -> Any:
    app = Litestar(route_handlers=[echo_json, any_json, read_form, read_text], plugins=[Shared()])
    with TestClient(app) as client:
        yield client


def problem_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == INVALID_TEXT
    return body


def post_json(client: TestClient[Litestar], path: str, raw: bytes) -> Any:
    return client.post(path, content=raw, headers={"Content-Type": "application/json"})


def test_every_escape_of_a_refused_control_character_is_seen(client: TestClient[Litestar]) -> None:
    for escape in ("\\u0000", "\\u0008", "\\u000B", "\\u000c", "\\u000E", "\\u001f", "\\b", "\\f"):
        problem = problem_of(post_json(client, "/echo-json", f'{{"name": "a{escape}b"}}'.encode()))
        assert list(problem["errors"]) == ["name"], escape
    for allowed in ("\\t", "\\n", "\\r", "\\u0009", "\\u000A", "\\u000d", "\\\\b", "\\\\u0000", "\\u00e9"):
        response = post_json(client, "/echo-json", f'{{"name": "a{allowed}b"}}'.encode())
        assert response.status_code == 200, (allowed, response.text)


def test_nested_values_and_field_names_are_named_by_their_top_level_field(client: TestClient[Litestar]) -> None:
    body = {"profile": {"tags": ["ok", "b\x01ad"], "not\x02e": "x"}, "fine": "yes", "\x03": 1}
    problem = problem_of(post_json(client, "/echo-json", json.dumps(body).encode()))
    assert problem["errors"] == {
        "non_field_errors": ["A field name contains the control character U+0003."],
        "profile": [
            "A field name contains the control character U+0002.",
            "Contains the control character U+0001 at tags[1]; only tab, line feed and carriage return are allowed.",
        ],
    }


def test_a_batch_is_answered_per_item_and_at_most_twenty_places_are_named(client: TestClient[Litestar]) -> None:
    rows = [{"name": f"row {i}\x00"} for i in range(50)]
    problem = problem_of(post_json(client, "/any-json", json.dumps(rows).encode()))
    assert [row["index"] for row in problem["errors"]] == list(range(20))
    assert problem["errors"][3]["errors"] == {
        "name": ["Contains the control character U+0000; only tab, line feed and carriage return are allowed."]
    }


def test_deep_bodies_are_walked_without_recursion(client: TestClient[Litestar]) -> None:
    depth = 900  # msgspec itself stops near 1,000 levels (the problem handler answers that with 400 too)
    raw = b"[" * depth + b'"\\u0000"' + b"]" * depth
    problem = problem_of(post_json(client, "/any-json", raw))
    assert problem["errors"][0]["index"] == 0
    assert post_json(client, "/any-json", b"[" * depth + b'"ok"' + b"]" * depth).json() == {"type": "list"}


def test_multipart_forms_are_checked_but_files_are_bytes(client: TestClient[Litestar]) -> None:
    files = {"upload": ("notes.bin", b"\x00\x01binary", "application/octet-stream")}
    fine = client.post("/form", data={"note": "a\tb"}, files=files)
    assert fine.json() == {"note": "a\tb", "upload": "file:notes.bin"}
    body = (  # by hand: httpx percent-encodes control characters in field names
        b'--b0undary\r\nContent-Disposition: form-data; name="note"\r\n\r\na\x00b\r\n'
        b'--b0undary\r\nContent-Disposition: form-data; name="n\x1eame"\r\n\r\nx\r\n'
        b"--b0undary--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    problem = problem_of(client.post("/form", content=body, headers=headers))
    assert problem["errors"] == {
        "note": ["Contains the control character U+0000; only tab, line feed and carriage return are allowed."],
        "non_field_errors": ["A field name contains the control character U+001E."],
    }


def test_url_encoded_forms_and_queries_name_what_is_not_text(client: TestClient[Litestar]) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    problem = problem_of(client.post("/form", content=b"ok=1&n%FFame=2&a%01=3&b=%FF", headers=headers))
    assert problem["errors"] == {
        "non_field_errors": [
            "A field name is not valid UTF-8.",
            "A field name contains the control character U+0001.",
        ],
        "b": ["Not valid UTF-8."],
    }
    fine = client.post("/form", content=b"a=caf%C3%A9+au+lait%0D%0A", headers=headers)
    assert fine.json() == {"a": "café au lait\r\n"}
    problem = problem_of(client.post("/any-json?x=1&y=%0B&z=caf%C3%A9", content=b"1"))
    assert problem["errors"] == {
        "y": ["Contains the control character U+000B; only tab, line feed and carriage return are allowed."]
    }


def test_text_bodies_must_be_utf8_without_control_characters(client: TestClient[Litestar]) -> None:
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    assert client.post("/text", content="Zoë\tand\r\nme".encode(), headers=headers).json() == {"characters": 11}
    problem = problem_of(client.post("/text", content=b"line one\nline\x7f two\nthree\x1a", headers=headers))
    assert problem["errors"]["non_field_errors"][0].startswith("Line 3: Contains the control character U+001A")
