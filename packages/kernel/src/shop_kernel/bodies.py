"""Request bodies the way the original API (Django REST Framework) accepted them: JSON, url-encoded and multipart forms.

DRF parses `application/json`, `application/x-www-form-urlencoded` and `multipart/form-data` on every write, and its
test client posts multipart by default. Every operation of ours that takes a JSON body (`data: JSONBody[...]`) takes
all three; any other `Content-Type` (text/plain, XML, none at all with a body) answers 415 problem+json instead of
being read as JSON. The request class (`shop_kernel.text.TextRequest`) applies this when Litestar asks it for the
body, so no handler knows which type arrived; `form_data` turns a form into what the JSON body would have been, and
Litestar's validation of the result gives the same answers, errors keyed by field, in both cases.

How a form spells what JSON spells with types (decision 117):
- A field once: `name=Mug`. Values are text; numbers, decimals and booleans are read from it where the schema says
  so, by the same rules as a string in JSON (`"10"` is 10, `"abc"` is "Expected `int`"). Booleans also take DRF's
  words: true/false, 1/0, yes/no, on/off, t/f, y/n in any case (an HTML checkbox sends `on`).
- A list: the field repeated, `categories=2&categories=5` (or DRF's `categories[0]=2&categories[1]=5`); one empty
  value, `categories=`, is the empty list.
- A list of objects (order lines): DRF's `items[0]product_id=1&items[0]quantity=2`, also spelled
  `items[0][product_id]` or `items[0].product_id`; or a value holding JSON, `items={"product_id": 1, "quantity": 2}`
  (repeated) or `items=[{...}, {...}]`, which is how OpenAPI describes an object in a multipart part.
- An empty value of a field that may be null is null (`parent=` makes a root category, `phone_number=` clears it).
- A field left out is left out, as in JSON: a missing `is_active` keeps its default (DRF would read an absent
  checkbox as false; that rule is for HTML pages, not API clients).
- Sent twice where the schema wants one value, or a file part where it wants text: 400 naming the field.
- A body that is an array in JSON (the bulk upload) is DRF's indexed rows: `[0]name=...&[0]price=...`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import msgspec.inspect as mi
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.openapi.spec import OpenAPIMediaType, Reference

from shop_kernel.problems import FieldValidationError, ProblemError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.datastructures import FormMultiDict
    from litestar.openapi.spec import OpenAPI

__all__ = (
    "BODY_MEDIA_TYPES",
    "FORM_MEDIA_TYPES",
    "JSON_MEDIA_TYPE",
    "BodyKind",
    "UnsupportedMediaType",
    "body_kind",
    "document_form_bodies",
    "empty_body",
    "form_data",
)

JSON_MEDIA_TYPE = "application/json"
FORM_MEDIA_TYPES = (RequestEncodingType.URL_ENCODED.value, RequestEncodingType.MULTI_PART.value)
BODY_MEDIA_TYPES = (JSON_MEDIA_TYPE, *FORM_MEDIA_TYPES)
"""What an operation taking a JSON body accepts, in the order the OpenAPI document lists them."""

BodyKind = Literal["json", "form", "empty"]

TRUE_WORDS = frozenset({"true", "1", "yes", "on", "t", "y"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", "f", "n"})
_INDEXED = re.compile(r"^(?P<base>[^\[\]]*)\[(?P<index>\d{1,6})\](?P<rest>.*)$", re.DOTALL)
_NESTED_KEY = re.compile(r"^(?:\.(?P<dotted>.+)|\[(?P<bracketed>[^\[\]]+)\])$", re.DOTALL)
_FILE_REFUSED = "Expected text, got a file."
_ONE_VALUE = "Send this field once."


class UnsupportedMediaType(ProblemError):
    """415: a body in a type this operation does not read."""

    status_code = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    problem_type = "/problems/unsupported-media-type"


_ACCEPT_HEADER = {"POST": "Accept-Post", "PATCH": "Accept-Patch"}
"""Where a 415 names the accepted types (RFC 9110 15.5.16; Accept-Post of W3C LDP, Accept-Patch of RFC 5789)."""


def body_kind(media_type: str, *, has_body: bool, method: str = "POST") -> BodyKind:
    """How to read a body of `media_type` (`Content-Type` without its parameters, lower case); 415 for any other."""
    if media_type == JSON_MEDIA_TYPE:
        return "json"
    if media_type in FORM_MEDIA_TYPES:
        return "form"
    if not has_body:
        return "empty"
    shown = f'"{media_type}"' if media_type else "none"
    accept = _ACCEPT_HEADER.get(method)
    raise UnsupportedMediaType(
        f"Unsupported media type {shown}: send {', '.join(BODY_MEDIA_TYPES)}.",
        headers={accept: ", ".join(BODY_MEDIA_TYPES)} if accept else None,
    )


FORM_DESCRIPTION = (
    "JSON, or the same fields as a form (`application/x-www-form-urlencoded` or `multipart/form-data`), as the "
    "original API accepted: lists as the field repeated (`categories=2&categories=5`, one empty value for none), "
    "objects in a list as `items[0]product_id=1&items[0]quantity=2` or each as a JSON value, booleans as "
    "true/false, on/off, yes/no or 1/0, an empty value as null where null is allowed. Validation and errors are the "
    "same as for JSON; file parts are refused. Any other `Content-Type` answers 415."
)


def document_form_bodies(openapi: OpenAPI) -> None:
    """Every operation documented as taking JSON only takes the same schema as either form too."""
    for path_item in (openapi.paths or {}).values():
        for method in ("put", "post", "patch", "delete"):
            operation = getattr(path_item, method, None)
            body = operation.request_body if operation is not None else None
            if body is None or isinstance(body, Reference) or list(body.content) != [JSON_MEDIA_TYPE]:
                continue
            schema = body.content[JSON_MEDIA_TYPE].schema
            for media_type in FORM_MEDIA_TYPES:
                body.content[media_type] = OpenAPIMediaType(schema=schema)
            body.description = body.description or FORM_DESCRIPTION


# ---- the shape of a body, read from its msgspec type -------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    kind: Literal["scalar", "bool", "list", "objects", "object"]
    nullable: bool = False
    item: _Field | None = None
    """The items of a list (`list`), or the fields of each object (`objects`, `object`) as `shape`."""
    shape: dict[str, _Field] = field(default_factory=dict)


def _field_of(info: mi.Type) -> _Field:
    while isinstance(info, mi.Metadata):
        info = info.type
    nullable = False
    if isinstance(info, mi.UnionType):
        options = [t for t in info.types if not isinstance(t, mi.NoneType)]  # UNSET is left out by msgspec
        nullable = any(isinstance(t, mi.NoneType) for t in info.types)
        if len(options) != 1:
            return _Field("scalar", nullable)
        info = options[0]
        while isinstance(info, mi.Metadata):
            info = info.type
    if isinstance(info, mi.BoolType):
        return _Field("bool", nullable)
    if isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        item = _field_of(info.item_type)
        if item.kind == "object":
            return _Field("objects", nullable, shape=item.shape)
        return _Field("list", nullable, item=item)
    if isinstance(info, (mi.StructType, mi.DataclassType, mi.TypedDictType)):
        return _Field("object", nullable, shape={f.encode_name: _field_of(f.type) for f in info.fields})
    return _Field("scalar", nullable)


@functools.cache
def _shape_of(target: Any) -> _Field:
    try:
        return _field_of(mi.type_info(target))
    except (TypeError, ValueError):  # a type msgspec cannot describe: values are passed on as text
        return _Field("scalar")


def empty_body(target: Any = Any) -> Any:
    """What a request without a body stands for: `[]` for an array type, else `{}`."""
    return [] if _shape_of(target).kind in {"objects", "list"} else {}


# ---- a form, read as the JSON body it stands for ------------------------------------------------------------


def form_data(form: FormMultiDict, target: Any = Any) -> Any:
    """The builtins a JSON body of type `target` would decode to, read from `form` (see the module's rules).

    Raises `FieldValidationError` (400, errors keyed by field) for what a form cannot mean: a field sent twice where
    one value is expected, a file part, a list of objects spelled two ways at once, JSON that does not parse.
    """
    shape = _shape_of(target)
    pairs = list(form.multi_items())
    errors: dict[str, list[str]] = {}
    if shape.kind == "objects":  # an array body: DRF's indexed rows, `[0]name=...`
        rows, rest = _indexed(pairs, "")
        for name in dict.fromkeys(name for name, _ in rest):
            errors.setdefault(name, []).append("Unexpected field: send rows as `[0]name=...`, `[1]name=...`.")
        data: Any = [_object(row, shape.shape, f"[{index}]", errors) for index, row in rows]
    elif shape.kind == "object":
        data = _object(pairs, shape.shape, "", errors)
    else:
        data = {name: _as_sent(name, values, errors) for name, values in _grouped(pairs).items()}
    if errors:
        raise FieldValidationError(errors)
    return data


def _grouped(pairs: Iterable[tuple[str, Any]]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def _indexed(
    pairs: Iterable[tuple[str, Any]], base: str
) -> tuple[list[tuple[int, list[tuple[str, Any]]]], list[tuple[str, Any]]]:
    """`base[N]key=value` pairs grouped by N (in index order, as (key, value) pairs), and every other pair."""
    rows: dict[int, list[tuple[str, Any]]] = {}
    rest: list[tuple[str, Any]] = []
    for name, value in pairs:
        match = _INDEXED.match(name)
        if match is None or match["base"] != base:
            rest.append((name, value))
            continue
        key = match["rest"]
        if nested := _NESTED_KEY.match(key):
            key = nested["dotted"] or nested["bracketed"]
        rows.setdefault(int(match["index"]), []).append((key, value))
    return sorted(rows.items()), rest


def _object(pairs: list[tuple[str, Any]], shape: dict[str, _Field], where: str, errors: dict[str, list[str]]) -> Any:
    """One object: its fields by the shape, any other field passed on as sent (so a struct that forbids unknown
    fields refuses it as it would in JSON)."""
    data: dict[str, Any] = {}
    indexed_by_base: dict[str, list[tuple[int, list[tuple[str, Any]]]]] = {}
    plain: list[tuple[str, Any]] = []
    for name, value in pairs:
        match = _INDEXED.match(name)
        if match is not None and match["base"] in shape:
            base = match["base"]
            if base not in indexed_by_base:
                indexed_by_base[base], _ = _indexed(((n, v) for n, v in pairs), base)
        else:
            plain.append((name, value))
    grouped = _grouped(plain)
    for name in dict.fromkeys([*grouped, *indexed_by_base]):
        label = f"{where}{name}" if where else name
        spec = shape.get(name)
        if spec is None:
            data[name] = _as_sent(label, grouped[name], errors)
        else:
            data[name] = _described(name, label, spec, grouped.get(name, []), indexed_by_base.get(name, []), errors)
    return data


def _described(
    name: str,
    label: str,
    spec: _Field,
    values: list[Any],
    indexed: list[tuple[int, list[tuple[str, Any]]]],
    errors: dict[str, list[str]],
) -> Any:
    """A field the schema describes, from its plain values or its indexed ones (`name[0]...`)."""
    refused = None
    if values and indexed:
        refused = f"Send either `{name}` or `{name}[0]...`, not both."
    elif spec.kind == "objects":
        if indexed:
            return [_object(row, spec.shape, f"{label}[{index}].", errors) for index, row in indexed]
        return _json_objects(label, values, errors)
    elif spec.kind == "list":
        if not any(key for _, row in indexed for key, _ in row):
            return _list(label, values or [value for _, row in indexed for _, value in row], spec, errors)
        refused = f"`{name}` is a list of values, not of objects."
    elif indexed:
        refused = f"`{name}` is not a list."
    if refused is None:
        return _plain(label, values, spec, errors)
    errors.setdefault(label, []).append(refused)
    return None


def _as_sent(label: str, values: list[Any], errors: dict[str, list[str]]) -> Any:
    """A field the schema does not describe: passed on as sent (one value, or the list of them), so validation judges
    it as it would judge it in JSON (ignored, or refused by a struct that forbids unknown fields)."""
    if any(isinstance(value, UploadFile) for value in values):
        errors.setdefault(label, []).append(_FILE_REFUSED)
        return None
    return values[0] if len(values) == 1 else values


def _plain(label: str, values: list[Any], spec: _Field, errors: dict[str, list[str]]) -> Any:
    if len(values) != 1:
        errors.setdefault(label, []).append(_ONE_VALUE)
        return None
    return _value(label, values[0], spec, errors)


def _value(label: str, value: Any, spec: _Field, errors: dict[str, list[str]]) -> Any:
    if isinstance(value, UploadFile):
        errors.setdefault(label, []).append(_FILE_REFUSED)
        return None
    if value == "" and spec.nullable:
        return None
    if spec.kind == "bool":
        word = value.strip().lower()
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS else value
    if spec.kind == "object":
        return _json(label, value, errors)
    return value


def _list(label: str, values: list[Any], spec: _Field, errors: dict[str, list[str]]) -> list[Any]:
    if values == [""]:
        return []
    item = spec.item or _Field("scalar")
    return [_value(label, value, item, errors) for value in values]


def _json(label: str, value: str, errors: dict[str, list[str]]) -> Any:
    try:
        return msgspec.json.decode(value)
    except msgspec.DecodeError:
        errors.setdefault(label, []).append("Expected JSON.")
        return None


def _json_objects(label: str, values: list[Any], errors: dict[str, list[str]]) -> list[Any]:
    """A list of objects sent as JSON values: each an object, or an array of them."""
    if values == [""]:
        return []
    objects: list[Any] = []
    for value in values:
        if isinstance(value, UploadFile):
            errors.setdefault(label, []).append(_FILE_REFUSED)
            continue
        try:
            decoded = msgspec.json.decode(value)
        except msgspec.DecodeError:
            errors.setdefault(label, []).append(
                f"Expected a JSON object or array, or fields such as `{label}[0]<field>`."
            )
            continue
        objects.extend(decoded if isinstance(decoded, list) else [decoded])
    return objects
