"""Fuzzing with schemathesis: every operation of the OpenAPI document, with generated positive and negative
data, as anonymous, a customer and a staff member, through the test client against the composed app.

Every answer is checked by schemathesis' own checks: no server error; status code, content type, headers
and body conform to the document; negative (schema-violating) data is rejected; positive (schema-valid) data is
accepted (`positive_data_acceptance`), where a 400 is expected only from the operations `_config` names, each for
a reason listed in `BUSINESS_RULES`, `OAUTH_PROTOCOL` or `OPEN_PROPERTIES`; and `OPTIONS` on each operation's path
lists in `Allow` exactly the methods the document lists (`allow_header_conformance`). Two checks are ours:
- such a 400 must name only the fields `BUSINESS_RULES` lists for the operation (or be an OAuth protocol error, or
  the text rule in a property the schema leaves open);
- ignored auth: an operation that declares a security requirement and answered 2xx to a token answers
  401 to the same request without the token and with a forged one. (schemathesis' `ignored_auth` sends its
  probes to a server over the network; here the app runs in-process.)

Fast profile in `make test`: 8 cases per operation, mode and caller, derandomized so CI is repeatable.
`make fuzz` runs the long profile (`SCHEMATHESIS_EXAMPLES=100`, random seeds); docs/quality.md has counts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from collections import Counter
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, reject
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from litestar import Litestar
from litestar.testing import TestClient
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NotSet
from schemathesis.core.failures import AcceptedNegativeData, FailureGroup
from schemathesis.specs.openapi import checks

from shop_kernel import InvalidText, control_character_in
from tests.support.api import Api
from tests.support.catalog import Catalog
from tests.support.forms import MULTIPART_CONTENT, UploadedFile, encode_multipart

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))
INVALID_TEXT = InvalidText.problem_type
LONG_PROFILE = EXAMPLES > 8

# Schema-valid data that a rule no JSON Schema keyword states may refuse, per operation and field, with the reason:
# rules about other rows (exists, taken, in stock), about two fields together, or about a value's meaning. Only these
# operations may answer schema-valid data with 400 (schemathesis' `positive_data_acceptance`, configured below), and
# only for these fields (`_check_positive_data`).
BUSINESS_RULES: dict[str, dict[str, str]] = {
    "registerCustomer": {
        "username": "taken, compared case-insensitively",
        "email": "taken, or not an address (email-validator's syntax check)",
        "password": "entirely numeric, a common password, or too similar to the username, e-mail or names",
        "password_confirm": "differs from `password`",
        "phone_number": "not a phone number (libphonenumber)",
    },
    "replaceProfile": {"email": "taken, or not an address", "phone_number": "not a phone number"},
    "updateProfile": {"email": "taken, or not an address", "phone_number": "not a phone number"},
    "createOrder": {"items": "an unknown or inactive product, or more than the per-order quantity of one product"},
    "listOrders": {"cursor": "opaque: only cursors the API gave out are valid"},
    "createCategory": {"parent": "no such category"},
    "replaceCategory": {"parent": "no such category, or the category itself or one of its descendants"},
    "updateCategory": {"parent": "no such category, or the category itself or one of its descendants"},
    "createProduct": {"categories": "no such category", "price": "not above 0", "sku": "taken, case-insensitively"},
    "replaceProduct": {"categories": "no such category", "price": "not above 0", "sku": "taken, case-insensitively"},
    "updateProduct": {"categories": "no such category", "price": "not above 0", "sku": "taken, case-insensitively"},
    "bulkUploadProducts": {
        "rows": "per row: the product rules above, and SKUs repeated in the upload",
        "non_field_errors": "the CSV inside the upload: its header and encoding",
        "file": "a file part that is neither CSV nor JSON (by its type or name), or does not parse as one",
    },
    "changePassword": {
        "current_password": "not the account's password",
        "new_password": "the registration policy (numeric, common, too similar to the account's details)",
        "new_password_confirm": "differs from `new_password`",
    },
    "requestPasswordReset": {
        "non_field_errors": "neither or both of `email` and `phone_number`",
        "email": "not an address",
        "phone_number": "not a phone number",
    },
    "confirmPasswordReset": {
        "non_field_errors": "neither or both of `token` and `code`",
        "token": "no such link, or used, or expired",
        "code": "no such code, or used, or expired",
        "phone_number": "not a phone number",
        "new_password": "the registration policy",
        "new_password_confirm": "differs from `new_password`",
    },
    "verifyEmail": {"token": "no such link, or used, or expired"},
    "closeMyAccount": {"password": "not the account's password"},
    "createClient": {
        "grant_types": "`refresh_token` without `authorization_code`, `client_credentials` for a public client",
        "redirect_uris": "not an https URL (http only on loopback), or missing for `authorization_code`",
        "non_field_errors": "an unknown field: registration refuses them, which the document does not state",
    },
}
# The OAuth protocol endpoints answer requests they cannot honour in RFC 6749 form: JSON `{"error": ...}`, or for the
# browser pages an HTML error page. Schema-valid data names no client, code or token the server knows.
OAUTH_PROTOCOL: dict[str, str] = {
    "getToken": "an unknown client, code or refresh token (`invalid_client`, `invalid_grant`)",
    "revokeToken": "an unknown client (`invalid_client`)",
    "introspectToken": "an unknown client (`invalid_client`)",
    "authorize": "an unknown client or redirect URI: an error page, there is nowhere to redirect to",
    "decideAuthorization": "an unknown client or redirect URI: an error page",
}
REFUSED_AS_A_WHOLE: dict[str, dict[str, str]] = {
    "createOrder": {"/problems/insufficient-stock": "not enough stock for a line (400, as the original answered)"},
}
"""Problem types (no field named) that schema-valid data may get as its 400, per operation."""
OTHER_REFUSALS: dict[str, dict[str, str]] = {
    "createOrder": {"422": "its Idempotency-Key was used before with another body"},
}
"""Statuses besides 400 that schema-valid data may get, per operation, beyond schemathesis' defaults."""
OPEN_PROPERTIES = (
    "a property the schema leaves open (no `additionalProperties: false`) is held to the text rule too: a 400 of type "
    "invalid-text whose body holds a control character"
)
SCHEMATHESIS_ACCEPTS = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
"""schemathesis' own expected statuses for schema-valid data (5xx fails its `not_a_server_error` check)."""


def _expected_refusals(document: dict[str, Any]) -> dict[str, str]:
    """operationId -> why schema-valid data may get a 400 from it."""
    reasons: dict[str, str] = {}
    for item in document["paths"].values():
        for operation in item.values():
            name = operation["operationId"]
            why = [*BUSINESS_RULES.get(name, {}).values(), *REFUSED_AS_A_WHOLE.get(name, {}).values()]
            if name in OAUTH_PROTOCOL:
                why.append(OAUTH_PROTOCOL[name])
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                why.append(OPEN_PROPERTIES)
            if why:
                reasons[name] = "; ".join(why)
    return reasons


def _config(document: dict[str, Any]) -> SchemathesisConfig:
    expected = {name: ["400"] for name in _expected_refusals(document)}
    for name, statuses in OTHER_REFUSALS.items():
        expected.setdefault(name, []).extend(statuses)
    return SchemathesisConfig.from_dict(
        {
            "operations": [
                {
                    "include-operation-id": name,
                    "checks": {"positive_data_acceptance": {"expected-statuses": [*SCHEMATHESIS_ACCEPTS, *statuses]}},
                }
                for name, statuses in expected.items()
            ]
        }
    )


EXCLUDED_CHECKS = [checks.ignored_auth]  # replaced by `_check_auth_is_enforced`


def _send(client: TestClient[Litestar], case: schemathesis.Case, headers: dict[str, str]) -> httpx.Response:
    request = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
    data = request.pop("data", None)
    if isinstance(data, (bytes, str)):
        request["content"] = data
    elif data is not None:
        request["data"] = data
    request.pop("cookies", None)
    if files := request.pop("files", None):  # schemathesis' parts, as `requests` takes them: encode them ourselves
        request["content"] = _multipart(files)
        request["headers"] = {**request.get("headers", {}), "Content-Type": MULTIPART_CONTENT}
    return client.request(**request)


def _multipart(files: list[tuple[str, Any]]) -> bytes:
    """`requests`' `files=[(name, (filename or None, value[, content type]))]` as DRF's test client would send the
    same fields: a part without a file name is a field (its value as text), one with a name a file."""
    fields: dict[str, list[Any]] = {}
    for name, (filename, value, *content_type) in files:
        content = value if isinstance(value, (str, bytes)) else str(value)
        if filename is not None:
            raw = content.encode() if isinstance(content, str) else content
            content = UploadedFile(filename, raw, content_type[0] if content_type else None)
        fields.setdefault(name, []).append(content)
    return encode_multipart(fields)


def _holds_control_character(value: Any) -> bool:
    """Whether JSON-like data (keys too) or text holds a control character the kernel's text rule refuses."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and control_character_in(item):
            return True
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _check_positive_data(response: httpx.Response, case: schemathesis.Case) -> str | None:
    """A 400 to schema-valid data (which `_config` lets through only where a reason is listed) must be for a listed
    field, an OAuth protocol error, or the text rule in a property the schema leaves open."""
    if response.status_code != 400:
        return None
    name = case.operation.definition.raw["operationId"]
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    problem = body if isinstance(body, dict) else {}
    oauth_error = "error" in problem or "text/html" in response.headers.get("content-type", "")
    if (name in OAUTH_PROTOCOL and oauth_error) or problem.get("type") in REFUSED_AS_A_WHOLE.get(name, {}):
        return None
    if problem.get("type") == INVALID_TEXT:
        # Every documented string carries the text rule's pattern (tests/app/test_openapi.py), so schema-valid data
        # holds control characters only in properties the schema leaves open; those are refused too.
        if _holds_control_character(case.body):
            return None
        return f"refused as invalid text, but the body holds no control character: {response.text[:300]}"
    errors = body.get("errors") if isinstance(body, dict) else None
    fields = set(errors) if isinstance(errors, dict) else {"rows"} if isinstance(errors, list) else {"?"}
    unexpected = fields - set(BUSINESS_RULES.get(name, {}))
    if unexpected:
        return f"schema-valid data refused for {sorted(unexpected)}: {response.text[:300]}"
    return None


def _valid_as_the_server_reads_patterns(case: schemathesis.Case, document: dict[str, Any]) -> bool:
    """Whether a case sent as schema-violating satisfies the document when its patterns are read as the server reads
    them. schemathesis reads patterns as ECMA-262 (`\\w` is ASCII); the server validates with Python's `re`, where
    `\\w` takes any letter as Django's username validator does, so `öl` is negative to one and valid to the other."""

    def valid(schema: dict[str, Any], value: Any) -> bool:
        return bool(jsonschema.Draft202012Validator({**schema, "components": document["components"]}).is_valid(value))

    operation = case.operation.definition.raw
    sent = {"query": case.query or {}, "path": case.path_parameters or {}, "header": case.headers or {}}
    for parameter in operation.get("parameters", []):
        values = sent.get(parameter["in"], {})
        if parameter["name"] not in values:
            if parameter.get("required"):
                return False
        elif not valid(parameter["schema"], values[parameter["name"]]):
            return False
    body = operation.get("requestBody")
    if body is None or isinstance(case.body, NotSet):
        return not (body or {}).get("required")
    media = body["content"].get(case.media_type or "application/json")
    return media is not None and valid(media.get("schema", {}), case.body)


def _check_auth_is_enforced(
    client: TestClient[Litestar], case: schemathesis.Case, response: httpx.Response, headers: dict[str, str]
) -> str | None:
    if not case.operation.definition.raw.get("security") or "Authorization" not in headers:
        return None
    if not 200 <= response.status_code < 300:
        return None
    for probe in ({}, {"Authorization": f"Bearer forged-{secrets.token_urlsafe(16)}"}):
        answer = _send(client, case, probe)
        if answer.status_code != 401:
            return f"answered {answer.status_code} without a valid token ({'none' if not probe else 'forged'})"
    return None


@pytest.mark.backend
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
@pytest.mark.parametrize("who", ["anonymous", "customer", "staff"])
def test_every_operation_keeps_its_contract(
    client: TestClient[Litestar], api: Api, catalog: Catalog, who: str, mode: GenerationMode
) -> None:
    if LONG_PROFILE:  # `make fuzz` runs with -s: keep its output to the summaries, not a line per request
        logging.getLogger("httpx").setLevel(logging.WARNING)
    category = catalog.category("Phones")
    product = catalog.product(category, stock_quantity=5)
    assert product["id"]
    caller = {"anonymous": None, "customer": api.customer(), "staff": api.staff()}[who]
    headers = caller.headers if caller else {}
    # The requests go through the test client, on the event loop where the app's engine and Redis clients live
    # (schemathesis' own ASGI client would run the app on another loop).
    document = client.get("/schema/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document, config=_config(document))
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    allowed: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=not LONG_PROFILE,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case) -> None:  # run at once below, so `label` is this loop's
            if any(isinstance(value, dict) for value in (case.query or {}).values()):
                reject()  # a query string cannot carry an object: httpx would send its repr, a valid string
            if case.media_type == "application/x-www-form-urlencoded" and case.body == {}:
                reject()  # an empty form is no body on the wire: 400 "No data provided", as a request without one
            response = _send(client, case, headers)
            statuses[response.status_code] += 1
            found: list[str] = []
            if label not in allowed:  # noqa: B023 - once per operation: `Allow` lists the methods of its path
                allowed.append(label)  # noqa: B023
                options = client.options(case.formatted_path, headers=headers)
                try:
                    case.validate_response(options, checks=[checks.allow_header_conformance], headers=headers)
                except FailureGroup as group:
                    found += [f"OPTIONS {type(failure).__name__}: {failure.title}" for failure in group.exceptions]
            try:
                case.validate_response(response, excluded_checks=EXCLUDED_CHECKS, headers=headers)
            except FailureGroup as group:
                found += [
                    f"{type(failure).__name__}: {failure.title}"
                    for failure in group.exceptions
                    if not (
                        isinstance(failure, AcceptedNegativeData)
                        and _valid_as_the_server_reads_patterns(case, document)
                    )
                ]
            if mode is GenerationMode.POSITIVE and (problem := _check_positive_data(response, case)):
                found.append(problem)
            if problem := _check_auth_is_enforced(client, case, response, headers):
                found.append(problem)
            for text in found:
                sent = f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}"[:300]
                got = f"{response.status_code} {response.text[:200]}"
                failures.append(f"{label}: {text}\n    sent {sent}\n    got {got}")  # noqa: B023

        try:
            exercise()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, label  # nothing in this operation can be made invalid

    if LONG_PROFILE:  # `make fuzz` shows these (pytest -s); docs/quality.md records them
        print(
            f"\nfuzz {who}/{mode.value}: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}"
        )
    assert failures == [], "\n".join(failures[:40])
    assert sum(statuses.values()) >= EXAMPLES * 25  # every operation was exercised
    assert len(allowed) >= 25  # and OPTIONS on its path
    if mode is GenerationMode.POSITIVE and who == "staff":
        assert sum(n for status, n in statuses.items() if status < 300) >= EXAMPLES * 5, statuses


# The text rule, sent on purpose: schemathesis never sends invalid UTF-8 and its run above uses one database.
# NUL (which PostgreSQL refuses in text) and invalid UTF-8 go into every string of every operation's body, query and
# path parameters, on both databases; each answer must be the kernel's 400 naming the field.
BAD_TEXT = {"NUL": ("a\x00b", "a%00b"), "invalid UTF-8": ("@@not-utf-8@@", "a%FFb")}
GUARDED_BEFORE_THE_BODY = {"POST /api/notifications/sms/delivery-reports/{secret}"}
"""Operations whose guard answers (404: the path secret, decision 79) before the body is read."""
OAUTH_ANSWERS = {"POST /oauth/token", "POST /oauth/revoke", "POST /oauth/introspect"}
OAUTH_PAGES = {"GET /oauth/authorize", "POST /oauth/authorize"}
"""The OAuth protocol's own refusals: `invalid_request` as RFC 6749 JSON, or the authorization pages' 400 page."""

Place = tuple[str | int, ...]


def _resolved(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _string_places(schema: dict[str, Any], components: dict[str, Any], place: Place = ()) -> list[Place]:
    """Where a JSON document of `schema` holds strings: `("items", 0, "notes")`."""
    schema = _resolved(schema, components)
    places: list[Place] = []
    types = schema.get("type", [])
    if "string" in (types if isinstance(types, list) else [types]):
        places.append(place)
    for option in (*schema.get("oneOf", ()), *schema.get("anyOf", ())):
        places += [p for p in _string_places(option, components, place) if p not in places]
    for name, sub in schema.get("properties", {}).items():
        places += _string_places(sub, components, (*place, name))
    if "items" in schema:
        places += _string_places(schema["items"], components, (*place, 0))
    return places


def _document_at(place: Place, value: str) -> Any:
    if not place:
        return value
    head, rest = place[0], place[1:]
    return [_document_at(rest, value)] if isinstance(head, int) else {head: _document_at(rest, value)}


def _text_probes(document: dict[str, Any]) -> list[tuple[str, str, str, str, Place, str]]:
    """(label, method, path template, where: body/csv/form/form field/query/path, place, media type) per request
    string."""
    components = document["components"]["schemas"]
    probes: list[tuple[str, str, str, str, Place, str]] = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                if parameter["in"] in {"query", "path"} and _string_places(parameter["schema"], components):
                    probes.append((label, method, path, parameter["in"], (parameter["name"],), ""))
            contents = operation.get("requestBody", {}).get("content", {})
            for media_type, content in contents.items():
                where = {"application/json": "body", "text/csv": "csv"}.get(media_type, "form")
                if where == "form" and "application/json" in contents:  # a JSON operation's form (issue 14)
                    if media_type == "application/x-www-form-urlencoded":  # multipart: tests/app/test_invalid_text
                        places = [p for p in _string_places(content["schema"], components) if len(p) == 1]
                        probes += [(label, method, path, "form field", place, media_type) for place in places]
                    continue
                places = _string_places(content["schema"], components) if where == "body" else [()]
                probes += [(label, method, path, where, place, media_type) for place in places]
    return probes


def _names_the_place(kind: str, where: str, place: Place, problem: dict[str, Any]) -> bool:
    errors = problem.get("errors")
    if where in {"body", "csv"} and kind == "invalid UTF-8":  # the decoder does not say where
        return problem.get("detail") == "The request body is not valid UTF-8."
    if where == "csv":
        return isinstance(errors, dict) and errors["non_field_errors"][0].startswith("Line 2: ")
    if where == "body" and isinstance(place[0], int):  # an array body: answered per item
        return isinstance(errors, list) and errors[0]["index"] == 0 and str(place[1]) in errors[0]["errors"]
    return isinstance(errors, dict) and str(place[0]) in errors


def _not_refused(label: str, kind: str, where: str, place: Place, response: httpx.Response) -> str | None:
    """Why `response` is not the refusal of text that is not text that `label` must answer, or None."""
    answer = f"{label} ({kind} in {where} at {place}): {response.status_code} {response.text[:200]}"
    if label in OAUTH_ANSWERS | OAUTH_PAGES:
        oauth = (
            "invalid_request" in response.text
            if label in OAUTH_ANSWERS
            else "text/html" in response.headers.get("content-type", "")
        )
        return None if response.status_code == 400 and oauth else answer
    if label in GUARDED_BEFORE_THE_BODY and where == "form":
        return None if response.status_code == 404 else f"{label} ({kind} in {where}): expected the guard's 404"
    problem = response.json() if response.status_code == 400 else {}
    if problem.get("type") != INVALID_TEXT or not _names_the_place(kind, where, place, problem):
        return answer
    return None


def _probe_body(where: str, place: Place, in_json: str, in_url: str) -> bytes:
    if where == "body":
        return json.dumps(_document_at(place, in_json)).encode().replace(b"@@not-utf-8@@", b"\xff\xfe")
    if where == "form field":
        return f"{place[0]}={in_url}".encode()
    if where == "csv":
        return f"name,price,sku\n{in_json},1.00,S-1\n".encode().replace(b"@@not-utf-8@@", b"\xff\xfe")
    if where == "form":
        return f"id={in_url}&status=Success".encode()
    return b""


def test_every_string_of_every_request_refuses_text_that_is_not_text(
    client: TestClient[Litestar], api: Api, catalog: Catalog
) -> None:
    category = catalog.category("Phones")
    product = catalog.product(category, stock_quantity=5)
    staff, customer = api.staff(), api.customer()
    ids = {"category_id": category["id"], "product_id": product["id"]}
    probes = _text_probes(client.get("/schema/openapi.json").json())
    failures: list[str] = []
    for label, method, template, where, place, media_type in probes:
        for kind, (in_json, in_url) in BAD_TEXT.items():
            path = re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m[1], 1)), template)
            if where == "path":
                path = template.replace(f"{{{place[0]}}}", in_url)
            elif where == "query":
                path += f"?{place[0]}={in_url}"
            content = _probe_body(where, place, in_json, in_url)
            for caller in (staff, customer):  # the customer's operations refuse staff... and the reverse
                headers = {**caller.headers, "Content-Type": media_type or "application/json"}
                response = client.request(method.upper(), path, content=content, headers=headers)
                if response.status_code != 403:
                    break
            if why := _not_refused(label, kind, where, place, response):
                failures.append(why)
    assert failures == [], "\n".join(failures)
    assert len(probes) >= 55  # every documented string field (59 today)
    assert client.get("/api/products/", headers=staff.headers).json()["count"] == 1


@hypothesis_settings(
    max_examples=4 * EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not LONG_PROFILE,
    suppress_health_check=list(HealthCheck),
)
@given(
    search=st.text(max_size=200)
    | st.text(alphabet="\"*^-:(){}'&|!<>~+%_#\\ \u02bc\u0149\u02d0NEARORANDNOTblender", max_size=40)
)
def test_search_takes_any_unicode(client: TestClient[Litestar], catalog: Catalog, search: str) -> None:
    """On both databases (their query languages differ): any text is a search, never a query-language error."""
    if not client.get("/api/products/", params={"page_size": 1}).json()["count"]:
        catalog.product(name="Blender Pro 500", description="Crème brûlée, чайник, 抹茶", sku="BL-500")
    response = client.get("/api/products/", params={"search": search})
    if control_character_in(search):
        assert response.status_code == 400
        assert response.json()["type"] == INVALID_TEXT
        return
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["results"]) <= 1
