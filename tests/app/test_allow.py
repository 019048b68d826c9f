"""`Allow` names every method of a path, on OPTIONS and on 405, as the OpenAPI document lists them (app/allow.py)."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.support.api import Api

GUARDED_BY_THE_PATH = {"/api/notifications/sms/delivery-reports/{secret}"}
"""Paths whose guard answers 404 to every request without the configured secret (decision 79), OPTIONS included."""


def _allow(header: str | None) -> set[str]:
    return {method.strip() for method in (header or "").split(",") if method.strip()}


@pytest.mark.backend
def test_options_and_405_list_every_documented_method_of_the_path(client: TestClient[Litestar], api: Api) -> None:
    staff = api.staff()
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert len(paths) >= 25
    for template, item in paths.items():
        path = re.sub(r"\{\w+\}", "1", template) + "/"
        documented = {method.upper() for method in item} | {"OPTIONS"}
        # HEAD is not served (decision 107): a path offers exactly the methods its document lists, plus OPTIONS.
        unused = next(m for m in ("DELETE", "PATCH", "PUT", "POST", "GET") if m not in documented)
        refused = client.request(unused, path, headers=staff.headers)
        assert refused.status_code == 405, (template, unused, refused.text)
        assert _allow(refused.headers.get("allow")) == documented, (template, refused.headers.get("allow"))
        if template in GUARDED_BY_THE_PATH:
            continue
        answer = client.options(path, headers=staff.headers)
        assert answer.status_code == 204, (template, answer.text)
        assert _allow(answer.headers.get("allow")) == documented, (template, answer.headers.get("allow"))
    head = client.head("/api/products/")
    assert head.status_code == 405
    assert _allow(head.headers["allow"]) == {"GET", "POST", "OPTIONS"}
