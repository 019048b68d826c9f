"""The error answers of every operation, documented in the OpenAPI document as problem+json.

Litestar documents a handler's success answer and, for handlers that validate input, a 400 in its own
error format. Our errors are RFC 9457 problem documents, and most operations can also answer 401, 403,
404 or 413. Which ones follows from the operation itself: guarded operations (those with a security
requirement) can answer 401 and 403, operations with a path parameter or a page/cursor 404, operations
with a body 413, operations that take JSON 415, and every operation 503 (the database may be unavailable).
`document_problems` adds those answers once the document is built; a handler that declares an answer itself
(`responses=problems(409)`, or the OAuth endpoints' RFC 6749 errors) keeps it.

Operations that take JSON take forms too (`shop_kernel.bodies`): their request body lists both form media types
with the same schema. It also states the kernel's text rule (`shop_kernel.text`) where clients and fuzzers read
constraints: every string of a request body, query or path parameter without a pattern of its own gets
`TEXT_PATTERN` (no control
characters but tab, line feed and carriage return).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Reference, RequestBody, Schema

from shop_kernel.bodies import JSON_MEDIA_TYPE, document_form_bodies
from shop_kernel.problems import PROBLEM_JSON, ProblemDetail
from shop_kernel.text import TEXT_PATTERN

if TYPE_CHECKING:
    from collections.abc import Iterator

    from litestar import Litestar
    from litestar.openapi.spec import OpenAPI, Operation

__all__ = ("PROBLEM_DESCRIPTIONS", "add_problem_answers", "document_problems", "problems")

PROBLEM_DESCRIPTIONS: dict[int, str] = {
    400: (
        "The request is invalid: a problem document whose `errors` names each invalid field. Text that is not UTF-8, "
        "or holds control characters other than tab, line feed and carriage return, is invalid in every field, "
        "parameter and body (`type: /problems/invalid-text`)."
    ),
    401: "No valid access token: missing, malformed, expired or revoked (`WWW-Authenticate: Bearer`).",
    403: "The token is valid but lacks the role or scope this operation needs.",
    404: "No such resource, or not yours, or a page past the end.",
    409: "The request conflicts with the current state (a duplicate, or a resource still in use).",
    408: "The body did not arrive in time.",
    413: "The body, or the number of rows in it, is over the limit.",
    415: "The body's `Content-Type` is not one this operation reads (see its request body).",
    422: "The request is well-formed but cannot be carried out as asked.",
    429: "Too many requests: wait `Retry-After` seconds.",
    503: (
        "A service this operation needs (the database: unreachable, out of space, read-only or overloaded; "
        "or the job queue) is not available; nothing was changed. Try again after `Retry-After` seconds."
    ),
}
_PAGING = {"page", "cursor"}
_BODY_METHODS = ("post", "put", "patch")


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """`responses=` for a route handler: these statuses answer a problem document."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetail,
            media_type=PROBLEM_JSON,
            description=PROBLEM_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            generate_examples=False,
        )
        for status in statuses
    }


def _problem_media() -> OpenAPIMediaType:
    return OpenAPIMediaType(schema=Reference(ref="#/components/schemas/ProblemDetail"))


def _problem_response(status: int) -> OpenAPIResponse:
    description = PROBLEM_DESCRIPTIONS.get(status, HTTPStatus(status).phrase)
    return OpenAPIResponse(description=description, content={PROBLEM_JSON: _problem_media()})


def _is_litestar_default_error(response: OpenAPIResponse | Reference) -> bool:
    """Litestar's own 400 (`{status_code, detail, extra}` as application/json), which we never send."""
    if isinstance(response, Reference) or not response.content:
        return False
    schema = next(iter(response.content.values())).schema
    return isinstance(schema, Schema) and bool(schema.properties) and "extra" in (schema.properties or {})


def add_problem_answers(operation: Operation, statuses: set[int], *, everywhere: set[int] | None = None) -> None:
    """Document `statuses` as problem answers where the handler declared nothing of its own; the
    `everywhere` ones (sent by app middleware before any handler runs) also next to a handler's own."""
    everywhere = everywhere or set()
    responses = operation.responses if operation.responses is not None else {}
    for status in sorted(statuses | everywhere):
        existing = responses.get(str(status))
        if existing is None or _is_litestar_default_error(existing):
            responses[str(status)] = _problem_response(status)
        elif status in everywhere and isinstance(existing, OpenAPIResponse):
            existing.content = {**(existing.content or {}), PROBLEM_JSON: _problem_media()}
    operation.responses = responses


def _statuses_of(operation: Operation, method: str) -> set[int]:
    parameters = [p for p in operation.parameters or [] if not isinstance(p, Reference)]
    statuses: set[int] = {503}
    if operation.security:
        statuses |= {401, 403}
    if any(p.param_in == "path" for p in parameters) or any(p.name in _PAGING for p in parameters):
        statuses.add(404)
    if parameters or operation.request_body is not None:
        statuses.add(400)
    if method in _BODY_METHODS:
        statuses |= {408, 413}
    body = operation.request_body
    if isinstance(body, RequestBody) and JSON_MEDIA_TYPE in body.content:  # read by `TextRequest.data`
        statuses.add(415)
    return statuses


def _problem_schema() -> Schema:
    text = Schema(type=OpenAPIType.STRING)
    messages = Schema(type=OpenAPIType.ARRAY, items=text)
    field_errors = Schema(type=OpenAPIType.OBJECT, additional_properties=messages)
    row_errors = Schema(
        type=OpenAPIType.ARRAY,
        items=Schema(
            type=OpenAPIType.OBJECT,
            required=["index", "errors"],
            properties={"index": Schema(type=OpenAPIType.INTEGER), "errors": field_errors},
        ),
    )
    return Schema(
        type=OpenAPIType.OBJECT,
        title="ProblemDetail",
        description="An RFC 9457 problem document.",
        required=["title", "status"],
        properties={
            "type": Schema(type=OpenAPIType.STRING, description="A problem type, e.g. `/problems/validation-error`."),
            "title": text,
            "status": Schema(type=OpenAPIType.INTEGER),
            "detail": text,
            "instance": text,
            "errors": Schema(
                one_of=[field_errors, row_errors],
                description="Field errors keyed by field, or for a batch one entry per invalid row.",
            ),
        },
    )


def _register_problem_schema(openapi: OpenAPI) -> None:
    components = openapi.components
    schemas = components.schemas if components.schemas is not None else {}
    schemas.setdefault("ProblemDetail", _problem_schema())
    components.schemas = schemas


def _operations(openapi: OpenAPI) -> Iterator[tuple[str, Operation]]:
    for path_item in (openapi.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(path_item, method, None)
            if operation is not None:
                yield method, operation


def _request_schemas(openapi: OpenAPI) -> Iterator[Schema | Reference | None]:
    """The schemas of what requests carry that the text rule checks: bodies, query and path parameters."""
    for _, operation in _operations(openapi):
        for parameter in operation.parameters or []:
            if not isinstance(parameter, Reference) and parameter.param_in in {"query", "path"}:
                yield parameter.schema
        body = operation.request_body
        if body is not None and not isinstance(body, Reference):
            yield from (media.schema for media in body.content.values())


def _subschemas(schema: Schema) -> Iterator[Schema | Reference | None]:
    yield from (schema.properties or {}).values()
    yield from (*(schema.all_of or ()), *(schema.any_of or ()), *(schema.one_of or ()), *(schema.prefix_items or ()))
    yield schema.items
    if not isinstance(schema.additional_properties, bool):
        yield schema.additional_properties


def _is_free_text(schema: Schema) -> bool:
    types = schema.type if isinstance(schema.type, (list, tuple)) else (schema.type,)
    return (
        OpenAPIType.STRING in types
        and schema.pattern is None
        and schema.enum is None
        and schema.const is None
        and schema.format != "binary"
    )


def _state_the_text_rule(openapi: OpenAPI) -> None:
    """`TEXT_PATTERN` on every free-text string of a request (components too: they are walked through)."""
    components = openapi.components.schemas or {}
    pending = list(_request_schemas(openapi))
    seen: set[int] = set()
    while pending:
        schema = pending.pop()
        if isinstance(schema, Reference):
            schema = components.get(schema.ref.rsplit("/", 1)[-1])
        if not isinstance(schema, Schema) or id(schema) in seen:  # None, or a dict merged in from msgspec `extra`
            continue
        seen.add(id(schema))
        if _is_free_text(schema):
            schema.pattern = TEXT_PATTERN
        pending.extend(_subschemas(schema))


def document_problems(app: Litestar, *, everywhere: set[int] | None = None) -> None:
    """Add the problem answers each operation can give (and `everywhere`, e.g. 429) to the app's document, and
    the text rule to the strings of every request."""
    if app.openapi_config is None:
        return
    openapi = app.openapi_schema
    _register_problem_schema(openapi)
    document_form_bodies(openapi)
    for method, operation in _operations(openapi):
        add_problem_answers(operation, _statuses_of(operation, method), everywhere=everywhere)
    _state_the_text_rule(openapi)
