"""Fast fuzzing profile (schemathesis): every operation of the OpenAPI document, as anonymous, customer and
staff, with generated data; no answer may be a server error, and every error answer is problem+json.

`SCHEMATHESIS_EXAMPLES=200 pytest tests/app/test_fuzz.py` runs a longer profile (docs/quality.md).
"""

from __future__ import annotations

import os
from collections import Counter

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from litestar import Litestar
from litestar.testing import TestClient

from tests.support.api import Api
from tests.support.catalog import Catalog

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))


def _send(client: TestClient[Litestar], case: schemathesis.Case, headers: dict[str, str]) -> httpx.Response:
    request = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
    data = request.pop("data", None)
    if isinstance(data, (bytes, str)):
        request["content"] = data
    elif data is not None:
        request["data"] = data
    request.pop("cookies", None)
    return client.request(**request)


@pytest.mark.parametrize("who", ["anonymous", "customer", "staff"])
def test_no_operation_answers_a_server_error(
    client: TestClient[Litestar], api: Api, catalog: Catalog, backend: str, who: str
) -> None:
    if backend != "sqlite":
        pytest.skip("the generated requests do not depend on the database: one backend is enough")
    product = catalog.product(stock_quantity=5)
    assert product["id"]
    caller = {"anonymous": None, "customer": api.customer(), "staff": api.staff()}[who]
    headers = caller.headers if caller else {}
    # The requests go through the test client, on the event loop where the app's engine and Redis clients live
    # (schemathesis' own ASGI client would run the app on another loop).
    schema = schemathesis.openapi.from_dict(client.get("/schema/openapi.json").json())
    statuses: Counter[int] = Counter()
    failures: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def exercise(case: schemathesis.Case) -> None:
            response = _send(client, case, headers)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                sent = f"{case.method} {case.formatted_path} {case.query} {case.body!r}"
                failures.append(f"{sent}: {response.status_code} {response.text[:200]}")
            elif response.status_code >= 400 and response.status_code != 405:
                content_type = response.headers.get("content-type", "")
                html_error_page = case.path == "/oauth/authorize"  # RFC 6749 4.1.2.1: no valid redirect, a page
                if not html_error_page and "json" not in content_type:
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code} as {content_type}")

        exercise()

    assert failures == [], "\n".join(failures)
    assert sum(statuses.values()) >= EXAMPLES * 30  # every operation was exercised
