"""RFC 9457 problem details: the one error format of the whole API.

Every error leaves as `application/problem+json` with `type`, `title`, `status` and `detail`.
Validation errors add an `errors` member keyed by field name (`{"email": ["..."]}`), the shape DRF
clients already read from the original API, moved inside the problem document.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import msgspec
from advanced_alchemy.exceptions import DuplicateKeyError, IntegrityError, NotFoundError
from litestar import Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from sqlalchemy.exc import IntegrityError as SQLAlchemyIntegrityError

from shop_kernel.outages import database_outage

if TYPE_CHECKING:
    from litestar import Request
    from litestar.types import ExceptionHandlersMap

__all__ = (
    "PROBLEM_JSON",
    "ConflictError",
    "FieldValidationError",
    "PayloadTooLarge",
    "ProblemDetail",
    "ProblemError",
    "RowError",
    "RowsValidationError",
    "UnprocessableError",
    "field_errors_from",
    "problem_exception_handlers",
    "problem_response",
)

PROBLEM_JSON = "application/problem+json"
NON_FIELD = "non_field_errors"
logger = logging.getLogger("shop.errors")
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_NO_BODY_MESSAGE = "'data'"
NO_BODY = "No data provided: the request has no body."


class RowError(msgspec.Struct):
    """The field errors of one item of a batch request (0-based `index`)."""

    index: int
    errors: dict[str, list[str]]


class ProblemDetail(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document."""

    title: str
    status: int
    type: str = "about:blank"
    detail: str | None = None
    instance: str | None = None
    errors: dict[str, list[str]] | list[RowError] | None = None
    """Field errors keyed by field, or for batch requests one entry per invalid item."""


class ProblemError(HTTPException):
    """An HTTP error that carries a problem `type` slug and optional per-field errors."""

    status_code = HTTPStatus.BAD_REQUEST
    problem_type = "about:blank"

    def __init__(
        self,
        detail: str = "",
        *,
        errors: Mapping[str, list[str]] | list[RowError] | None = None,
        problem_type: str | None = None,
        headers: dict[str, str] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(detail=detail, status_code=status_code, headers=headers)
        self.errors: dict[str, list[str]] | list[RowError] | None = (
            (list(errors) if isinstance(errors, list) else dict(errors)) if errors else None
        )
        if problem_type:
            self.problem_type = problem_type


class FieldValidationError(ProblemError):
    """400: the request is well-formed but some fields are invalid (the DRF status for this)."""

    status_code = HTTPStatus.BAD_REQUEST
    problem_type = "/problems/validation-error"

    def __init__(self, errors: Mapping[str, list[str]], detail: str = "Some fields are invalid.") -> None:
        super().__init__(detail, errors=errors)


class RowsValidationError(ProblemError):
    """400 for a batch: nothing was written; `errors` lists every invalid item by index."""

    status_code = HTTPStatus.BAD_REQUEST
    problem_type = "/problems/validation-error"

    def __init__(self, rows: list[RowError], detail: str = "Some rows are invalid; nothing was written.") -> None:
        super().__init__(detail, errors=rows)


class PayloadTooLarge(ProblemError):
    status_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    problem_type = "/problems/too-large"


class ConflictError(ProblemError):
    """409: the request conflicts with the current state of a resource."""

    status_code = HTTPStatus.CONFLICT
    problem_type = "/problems/conflict"


class UnprocessableError(ProblemError):
    """422: the request is understood and valid in form, but cannot be processed as asked."""

    status_code = HTTPStatus.UNPROCESSABLE_ENTITY
    problem_type = "/problems/unprocessable"


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    detail: str | None = None,
    *,
    problem_type: str = "about:blank",
    errors: dict[str, list[str]] | list[RowError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[ProblemDetail]:
    body = ProblemDetail(
        type=problem_type,
        title=_title(status),
        status=status,
        detail=detail or None,
        instance=request.url.path,
        errors=errors or None,
    )
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_AT_PATH = re.compile(r"^(?P<message>.*) - at `\$\.(?P<field>[^`\[.]+)[^`]*`$")


def field_errors_from(exc: msgspec.ValidationError) -> dict[str, list[str]]:
    """`Expected int - at `$.price`` becomes `{"price": ["Expected int"]}` (one error: msgspec stops at the first)."""
    text = str(exc)
    if match := _AT_PATH.match(text):
        return {match["field"]: [match["message"]]}
    if missing := _MISSING_FIELD.search(text):
        return {missing.group(1): ["This field is required."]}
    return {NON_FIELD: [text]}


def _validation_errors(extra: Any) -> tuple[dict[str, list[str]], str | None]:
    """Litestar reports `[{"key": "data.name", "message": ..., "source": "body"}]`; group them by field."""
    errors: dict[str, list[str]] = {}
    first_message: str | None = None
    items = extra if isinstance(extra, list) else [extra] if extra else []
    for item in items:
        if isinstance(item, Mapping):
            message = str(item.get("message", "Invalid value."))
            key = str(item.get("key") or NON_FIELD)
        else:
            message, key = str(item), NON_FIELD
        key = key.removeprefix("data.").removeprefix("$.")
        if key == "data" and message == _NO_BODY_MESSAGE:  # Litestar found no body for a handler that takes one
            key, message = NON_FIELD, NO_BODY
        elif key == "data":
            missing = _MISSING_FIELD.search(message)
            key = missing.group(1) if missing else NON_FIELD
        errors.setdefault(key, []).append(message)
        first_message = first_message or message
    return errors, first_message


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ProblemDetail]:
    headers = dict(exc.headers or {})
    if isinstance(exc, ProblemError):
        return problem_response(
            request, exc.status_code, exc.detail, problem_type=exc.problem_type, errors=exc.errors, headers=headers
        )
    if isinstance(exc, ValidationException):
        errors, first = _validation_errors(exc.extra)
        detail = exc.detail if exc.detail and exc.detail != "Validation failed" else None
        if detail and detail.startswith("Validation failed for"):
            detail = f"Invalid request: {first}" if first else detail
        return problem_response(
            request,
            exc.status_code,
            detail or "The request is invalid.",
            problem_type="/problems/validation-error",
            errors=errors or None,
            headers=headers,
        )
    if isinstance(exc, RequestEntityTooLarge):
        return problem_response(
            request,
            exc.status_code,
            _too_large_detail(request),
            problem_type=PayloadTooLarge.problem_type,
            headers={**headers, "Connection": "close"},
        )
    detail = exc.detail if exc.detail != _title(exc.status_code) else None
    if exc.status_code >= 500:
        logger.error("server error on %s %s", request.method, request.url.path, exc_info=exc)
        detail = None
    return problem_response(request, exc.status_code, detail, headers=headers)


def _too_large_detail(request: Request[Any, Any, Any]) -> str:
    """Litestar raises `RequestEntityTooLarge` without saying the limit; the handler's layers know it."""
    try:
        limit = request.route_handler.resolve_request_max_body_size()
    except (AttributeError, KeyError, TypeError):  # pragma: no cover - raised outside a route
        limit = None
    if limit:
        return f"The request body is larger than the {limit} bytes this endpoint accepts."
    return "The request body is too large."


def handle_not_found(request: Request[Any, Any, Any], exc: NotFoundError) -> Response[ProblemDetail]:
    return problem_response(request, HTTPStatus.NOT_FOUND, "No such resource.")


def handle_integrity_error(
    request: Request[Any, Any, Any], exc: IntegrityError | SQLAlchemyIntegrityError
) -> Response[ProblemDetail]:
    logger.info("integrity error answered as 409: %s (%r)", exc, exc.__cause__)
    detail = "A resource with these values already exists." if isinstance(exc, DuplicateKeyError) else None
    return problem_response(
        request,
        HTTPStatus.CONFLICT,
        detail or "The change conflicts with existing data.",
        problem_type="/problems/conflict",
    )


def handle_recursion_error(request: Request[Any, Any, Any], exc: RecursionError) -> Response[ProblemDetail]:
    """msgspec answers JSON nested thousands deep with `RecursionError`, which Litestar's body decoding and
    our own `msgspec.json.decode` calls let through: the client's mistake, so 400, not 500."""
    if "deserializing" not in str(exc):
        return handle_unexpected(request, exc)
    return problem_response(
        request,
        HTTPStatus.BAD_REQUEST,
        "The JSON body is nested too deeply.",
        problem_type="/problems/validation-error",
        errors={NON_FIELD: ["JSON nested too deeply."]},
    )


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetail]:
    """500 without internals: the traceback goes to the log, never to the client.

    A database outage (unreachable, out of space, read-only, overloaded) is no bug: 503 with `Retry-After`.
    """
    if (outage := database_outage(exc)) is not None:
        logger.warning(
            "database %s on %s %s: answered 503 (%s: %s)",
            outage.kind,
            request.method,
            request.url.path,
            type(exc).__name__,
            str(exc)[:300],
        )
        return problem_response(
            request,
            HTTPStatus.SERVICE_UNAVAILABLE,
            outage.detail,
            problem_type=outage.problem_type,
            headers={"Retry-After": str(outage.retry_after)},
        )
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, HTTPStatus.INTERNAL_SERVER_ERROR, "An unexpected error occurred.")


def problem_exception_handlers() -> ExceptionHandlersMap:
    """Exception handlers every plugin installs, so a standalone mount speaks problem+json too."""
    return {
        HTTPException: handle_http_exception,
        NotFoundError: handle_not_found,
        IntegrityError: handle_integrity_error,
        # a constraint a handler did not expect (two requests racing for one unique value, a row deleted
        # under a foreign key): the same 409, never a 500
        SQLAlchemyIntegrityError: handle_integrity_error,
        RecursionError: handle_recursion_error,
        Exception: handle_unexpected,
    }
