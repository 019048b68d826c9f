"""Text that is not text: one rule for every string a request carries, whatever the field.

Text must be UTF-8 and free of C0 control characters other than tab, line feed and carriage return (browsers
send CRLF from text areas). NUL is what PostgreSQL refuses in text (a 500 before this rule, while SQLite stored
it); the others have no business in a name, a note or a search either, and would travel on into logs, e-mails
and SMS. Refusals are 400 problem+json of type `/problems/invalid-text`, naming the field when one is known.

The rule is checked where text enters, before a handler sees it:
- `TextRequest` (the request class `install_shared` installs) when a body is decoded, so after the guards and
  through the body's size limit and deadline: `json()` for JSON bodies, `body()` for url-encoded forms and text
  bodies (`text/*`, `application/csv`), `form()` for multipart forms. A JSON operation reads forms too
  (`shop_kernel.bodies`): their values are checked as the form is read, and what they hold as JSON text once
  decoded.
- `TextInputMiddleware` for the query string and the path, before any handler.

Kept off the hot path: a JSON body is walked only when its bytes hold an escape that can decode to a control
character (`\\u000`, `\\u001`, `\\b`, `\\f`; raw control bytes are invalid JSON already), and invalid UTF-8 is
caught from the decoder instead of being looked for. Multipart bodies decoded by Litestar itself
(`Body(media_type=MULTI_PART)`) would bypass the request's methods; no operation takes one (JSON operations read
their forms through `TextRequest.data`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Request
from litestar.connection.base import AuthT, StateT, UserT
from litestar.enums import RequestEncodingType, ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.params import BodyKwarg
from litestar.types import Empty

from shop_kernel.bodies import BODY_MEDIA_TYPES, body_kind, empty_body, form_data
from shop_kernel.problems import NON_FIELD, ProblemError, RowError

if TYPE_CHECKING:
    from litestar.datastructures import FormMultiDict
    from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = (
    "TEXT_PATTERN",
    "InvalidText",
    "TextInputMiddleware",
    "TextRequest",
    "body_data",
    "check_plain_text",
    "control_character_in",
    "decode_json_text",
)

TEXT_PATTERN = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F]*$"
"""The rule as a JSON Schema pattern, for the OpenAPI document."""
MAX_REPORTED = 20
"""Fields named in one answer at most: a body full of control characters is refused just the same."""

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROL_BYTE = re.compile(b"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_JSON_CONTROL_ESCAPES = (b"\\u000", b"\\u001", b"\\b", b"\\f")
_URL_NEEDS_A_LOOK = re.compile(b"[%\x00-\x1f\x80-\xff]")
_TEXT_TYPES = frozenset({"application/csv"})


class InvalidText(ProblemError):
    """400: text that is not UTF-8, or holds a control character other than tab, line feed and carriage return."""

    problem_type = "/problems/invalid-text"


def control_character_in(text: str) -> str | None:
    """The first control character `text` may not hold, or None."""
    found = _CONTROL.search(text)
    return found.group() if found else None


def _refusal(char: str, where: str = "") -> str:
    at = f" at {where}" if where else ""
    return f"Contains the control character U+{ord(char):04X}{at}; only tab, line feed and carriage return are allowed."


def _in_a_name(char: str, where: str = "") -> str:
    return f"A field name{f' in {where}' if where else ''} contains the control character U+{ord(char):04X}."


# JSON


def _json_location(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path).lstrip(".")


def _json_controls(value: Any) -> Iterator[tuple[tuple[str | int, ...], str, bool]]:
    """(path, character, in a key?) for each string of `value` holding a control character; a field name is reported
    as its object is reached, values in document order.

    Iterative: bodies nested as deep as the decoder allows must not overflow the stack here.
    """
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if char := control_character_in(item):
                yield path, char, False
        elif isinstance(item, dict):
            children: list[tuple[tuple[str | int, ...], Any]] = []
            for key, child in item.items():
                if char := control_character_in(key):
                    yield path, char, True  # reported where the key is; what is under it is not looked at
                else:
                    children.append(((*path, key), child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(((*path, index), child) for index, child in reversed(list(enumerate(item))))


def _field_errors(found: list[tuple[tuple[str | int, ...], str, bool]]) -> dict[str, list[str]]:
    """Keyed by the top-level field, as every validation error is; deeper places are named in the message."""
    errors: dict[str, list[str]] = {}
    for path, char, in_key in found:
        field, rest = (path[0], path[1:]) if path and isinstance(path[0], str) else (NON_FIELD, path)
        where = _json_location(rest)
        errors.setdefault(field, []).append(_in_a_name(char, where) if in_key else _refusal(char, where))
    return errors


def _refuse_controls_in_json(value: Any) -> None:
    """Raise `InvalidText` naming the fields (up to `MAX_REPORTED`) of a decoded JSON body that hold a control
    character; a top-level array is answered per item (`[{index, errors}]`), the shape of batch errors."""
    found = list(islice(_json_controls(value), MAX_REPORTED))
    if not found:
        return
    detail = "The request body contains control characters."
    if isinstance(value, list):  # every path starts with the item's index
        rows: dict[int, list[tuple[tuple[str | int, ...], str, bool]]] = {}
        for path, char, in_key in found:
            rows.setdefault(int(path[0]), []).append((path[1:], char, in_key))
        raise InvalidText(detail, errors=[RowError(index=i, errors=_field_errors(rows[i])) for i in sorted(rows)])
    raise InvalidText(detail, errors=_field_errors(found))


# url-encoded text: query strings and forms


def _urlencoded_errors(raw: bytes) -> dict[str, list[str]]:
    """Field errors of an url-encoded string (`a=1&b=2`), checked on its percent-decoded bytes."""
    if not _URL_NEEDS_A_LOOK.search(raw):
        return {}
    errors: dict[str, list[str]] = {}
    for part in raw.split(b"&"):
        name_raw, _, value_raw = part.partition(b"=")
        try:
            name = unquote_to_bytes(name_raw.replace(b"+", b" ")).decode()
        except UnicodeDecodeError:
            errors.setdefault(NON_FIELD, []).append("A field name is not valid UTF-8.")
            continue
        if char := control_character_in(name):
            errors.setdefault(NON_FIELD, []).append(_in_a_name(char))
            continue
        try:
            value = unquote_to_bytes(value_raw.replace(b"+", b" ")).decode()
        except UnicodeDecodeError:
            errors.setdefault(name, []).append("Not valid UTF-8.")
            continue
        if char := control_character_in(value):
            errors.setdefault(name, []).append(_refusal(char))
    return errors


def _refuse_invalid_url_text(scope: Scope) -> None:
    if errors := _urlencoded_errors(scope.get("query_string", b"")):
        raise InvalidText("The query string is not valid text.", errors=errors)
    path_params: dict[str, Any] = scope.get("path_params", {})
    raw_path = scope.get("raw_path")
    if raw_path and b"%" in raw_path:
        try:
            unquote_to_bytes(raw_path.partition(b"?")[0]).decode()
        except UnicodeDecodeError:
            # the server decoded the path with U+FFFD for what it could not read: that names the parameter
            names = [name for name, value in path_params.items() if isinstance(value, str) and "\ufffd" in value]
            errors = {name: ["Not valid UTF-8."] for name in names} or {NON_FIELD: ["Not valid UTF-8."]}
            raise InvalidText("The path is not valid UTF-8.", errors=errors) from None
    for name, value in path_params.items():
        if isinstance(value, str) and (char := control_character_in(value)):
            raise InvalidText(f"The path parameter '{name}' is not valid text.", errors={name: [_refusal(char)]})


# text bodies


def _refuse_invalid_plain_text(body: bytes) -> None:
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        message = f"Not valid UTF-8 (line {line})."
        raise InvalidText("The request body is not valid UTF-8.", errors={NON_FIELD: [message]}) from None
    if found := _CONTROL_BYTE.search(body):
        line = body.count(b"\n", 0, found.start()) + 1
        message = f"Line {line}: {_refusal(chr(found.group()[0]))}"
        raise InvalidText("The request body contains control characters.", errors={NON_FIELD: [message]})


class TextRequest(Request[UserT, AuthT, StateT]):
    """Litestar's request, with the text rule applied to the body as it is decoded, and the body read from JSON or a
    form alike (`shop_kernel.bodies`): what Litestar asks `json()` for is the body's data, whatever of the three
    accepted types it came in; any other type is 415."""

    __slots__ = ("_text_checked",)

    async def json(self) -> Any:
        if self._json is not Empty or self._connection_state.json is not Empty:
            return await super().json()
        field = self.route_handler.parsed_data_field
        value = await self.data(field.annotation if field is not None else Any)
        self._json = self._connection_state.json = value
        return value

    async def data(self, target: Any = Any) -> Any:
        """The body as the builtins a JSON body of type `target` decodes to: JSON as sent, a form as the JSON it stands
        for. 415 for any other `Content-Type` (a body without one included). No body at all, whatever its type, is
        an empty object (an empty array for an array type); Litestar itself answers a `data` handler's missing body
        (400 "No data provided", `shop_kernel.problems`) without asking."""
        media_type = self.content_type[0]
        has_body = media_type in BODY_MEDIA_TYPES or await self._has_body()
        kind = body_kind(media_type, has_body=has_body, method=self.method)
        if kind == "empty" or (kind == "json" and not await self.body()):
            return empty_body(target)
        if kind == "json":
            return await self._decoded_json()
        value = form_data(await self.form(), target)
        _refuse_controls_in_json(value)  # values sent as JSON text may hold escaped control characters
        return value

    async def _has_body(self) -> bool:
        announced = self.headers.get("content-length")
        if announced is not None:
            return announced.strip() not in {"", "0"}
        return bool(await Request.body(self))  # read without the text rule: the type is refused whatever it holds

    async def _decoded_json(self) -> Any:
        body = await self.body()
        try:
            value = await super().json()
        except UnicodeDecodeError:  # msgspec lets it through, which was a 500
            raise InvalidText(
                "The request body is not valid UTF-8.", errors={NON_FIELD: ["Not valid UTF-8."]}
            ) from None
        if b"\\" in body and any(escape in body for escape in _JSON_CONTROL_ESCAPES):
            _refuse_controls_in_json(value)
        return value

    async def body(self) -> bytes:
        body = await super().body()
        if body and not getattr(self, "_text_checked", False):
            self._text_checked = True
            media_type = self.content_type[0]
            if media_type == RequestEncodingType.URL_ENCODED or self._handler_takes_a_form():
                if errors := _urlencoded_errors(body):
                    raise InvalidText("The form is not valid text.", errors=errors)
            elif (media_type.startswith("text/") or media_type in _TEXT_TYPES) and not self._handler_takes_json():
                _refuse_invalid_plain_text(body)  # (a JSON operation refuses the type itself: 415)
        return body

    async def form(self) -> FormMultiDict:
        try:
            form = await super().form()  # url-encoded forms were checked as their body was read
        except (UnicodeDecodeError, LookupError):  # a multipart part not in its charset, or in an unknown one
            raise InvalidText(
                "The form is not valid text.", errors={NON_FIELD: ["A part is not valid UTF-8 (or its charset)."]}
            ) from None
        if self.content_type[0] == RequestEncodingType.MULTI_PART:
            errors: dict[str, list[str]] = {}
            for name, value in form.multi_items():
                if char := control_character_in(name):
                    errors.setdefault(NON_FIELD, []).append(_in_a_name(char))
                elif isinstance(value, str) and (char := control_character_in(value)):
                    errors.setdefault(name, []).append(_refusal(char))
            if errors:
                raise InvalidText("The form is not valid text.", errors=errors)
        return form

    def _handler_takes_json(self) -> bool:
        field = self.route_handler.parsed_data_field
        kwarg = field.kwarg_definition if field else None
        return field is not None and (not isinstance(kwarg, BodyKwarg) or kwarg.media_type == RequestEncodingType.JSON)

    def _handler_takes_a_form(self) -> bool:
        """Litestar reads an url-encoded `data` from the body whatever the `Content-Type` says."""
        field = self.route_handler.parsed_data_field
        kwarg = field.kwarg_definition if field else None
        return isinstance(kwarg, BodyKwarg) and kwarg.media_type == RequestEncodingType.URL_ENCODED


async def body_data(request: Request[Any, Any, Any], target: Any = Any) -> Any:
    """`TextRequest.data` of `request`, for a handler that reads its body itself (`install_shared` makes every
    request of an app a `TextRequest`)."""
    if not isinstance(request, TextRequest):  # pragma: no cover - install_shared refuses such an app
        raise TypeError(f"{type(request).__qualname__} is not a TextRequest")
    return await request.data(target)


def check_plain_text(content: bytes) -> None:
    """The text rule for a text document a handler reads itself (an uploaded CSV file): `InvalidText` names the
    line."""
    _refuse_invalid_plain_text(content)


def decode_json_text(content: bytes) -> Any:
    """A JSON document a handler reads itself (an uploaded file), with the text rule applied as to a JSON body.
    Raises `msgspec.DecodeError` for what is not JSON."""
    try:
        value = msgspec.json.decode(content)
    except UnicodeDecodeError:
        raise InvalidText("The file is not valid UTF-8.", errors={NON_FIELD: ["Not valid UTF-8."]}) from None
    _refuse_controls_in_json(value)
    return value


class TextInputMiddleware(ASGIMiddleware):
    """Refuses a query string or path that is not valid text, before any handler (bodies: `TextRequest`)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        _refuse_invalid_url_text(scope)
        await next_app(scope, receive, send)
