"""How a form is read as the JSON body it stands for (`shop_kernel.bodies.form_data`): the rules of decision 117, on
a schema with every kind of field. The HTTP tests (tests/app/test_request_bodies.py) run them through the API."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar.datastructures import FormMultiDict

from shop_kernel import FieldValidationError, UnsupportedMediaType
from shop_kernel.bodies import body_kind, empty_body, form_data


class Line(msgspec.Struct):
    sku: str
    quantity: int


class Address(msgspec.Struct):
    city: str


class Everything(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    count: int = 0
    active: bool = True
    parent: int | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    flags: list[bool] = msgspec.field(default_factory=list)
    lines: list[Line] = msgspec.field(default_factory=list)
    address: Address | None = None
    either: int | str = 0


def read(pairs: list[tuple[str, Any]], target: Any = Everything) -> Any:
    return form_data(FormMultiDict(pairs), target)


def errors_of(pairs: list[tuple[str, Any]], target: Any = Everything) -> dict[str, list[str]]:
    with pytest.raises(FieldValidationError) as caught:
        read(pairs, target)
    assert isinstance(caught.value.errors, dict)
    return caught.value.errors


def test_values_become_what_the_json_body_would_hold() -> None:
    data = read(
        [
            ("name", "Lamp"),
            ("count", "3"),
            ("active", "Off"),
            ("parent", ""),
            ("tags", "a"),
            ("tags", "b"),
            ("flags[1]", "no"),
            ("flags[0]", "Y"),
            ("lines[1][sku]", "B"),
            ("lines[1][quantity]", "2"),
            ("lines[0].sku", "A"),
            ("lines[0].quantity", "1"),
            ("address", '{"city": "Nairobi"}'),
            ("either", "7"),
        ]
    )
    assert data == {
        "name": "Lamp",
        "count": "3",  # Litestar's validation reads "3" as 3, as it does for a JSON string
        "active": False,
        "parent": None,
        "tags": ["a", "b"],
        "flags": [True, False],
        "lines": [{"sku": "A", "quantity": "1"}, {"sku": "B", "quantity": "2"}],
        "address": {"city": "Nairobi"},
        "either": "7",
    }
    converted = msgspec.convert(data, Everything, strict=False)
    assert (converted.count, converted.lines[1].quantity, converted.address) == (3, 2, Address("Nairobi"))
    # lists of objects as JSON values; one empty value is the empty list
    as_json = read(
        [("name", "x"), ("lines", '{"sku": "A", "quantity": 1}'), ("lines", '[{"sku": "B", "quantity": 2}]')]
    )
    assert as_json["lines"] == [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}]
    assert read([("name", "x"), ("tags", ""), ("lines", "")]) == {"name": "x", "tags": [], "lines": []}
    # a boolean in no known word is left for validation to refuse; an unknown field is passed on (and refused here)
    assert read([("name", "x"), ("active", "maybe")])["active"] == "maybe"
    assert read([("name", "x"), ("extra", "1"), ("extra", "2")])["extra"] == ["1", "2"]
    with pytest.raises(msgspec.ValidationError, match="unknown field `extra`"):
        msgspec.convert(read([("name", "x"), ("extra", "1")]), Everything, strict=False)


def test_what_a_form_cannot_mean_names_the_field() -> None:
    assert errors_of([("name", "a"), ("name", "b")]) == {"name": ["Send this field once."]}
    assert errors_of([("name[0]", "a")]) == {"name": ["`name` is not a list."]}
    assert errors_of([("tags[0]x", "a")]) == {"tags": ["`tags` is a list of values, not of objects."]}
    assert errors_of([("lines", "[]"), ("lines[0]sku", "A")]) == {
        "lines": ["Send either `lines` or `lines[0]...`, not both."]
    }
    assert errors_of([("lines", "sku=A")]) == {
        "lines": ["Expected a JSON object or array, or fields such as `lines[0]<field>`."]
    }
    assert errors_of([("address", "{")]) == {"address": ["Expected JSON."]}


def test_array_bodies_are_drfs_indexed_rows() -> None:
    rows = read([("[1]sku", "B"), ("[1]quantity", "2"), ("[0]sku", "A")], list[Line])
    assert rows == [{"sku": "A"}, {"sku": "B", "quantity": "2"}]
    assert errors_of([("sku", "A")], list[Line]) == {
        "sku": ["Unexpected field: send rows as `[0]name=...`, `[1]name=...`."]
    }
    assert read([("a", "1"), ("a", "2"), ("b", "")], Any) == {"a": ["1", "2"], "b": ""}
    assert (empty_body(list[Line]), empty_body(Everything)) == ([], {})


def test_types_other_than_json_and_forms_are_415() -> None:
    assert body_kind("application/json", has_body=True) == "json"
    assert body_kind("multipart/form-data", has_body=True) == "form"
    assert body_kind("text/plain", has_body=False) == "empty"
    with pytest.raises(UnsupportedMediaType) as caught:
        body_kind("text/plain", has_body=True, method="PATCH")
    assert caught.value.status_code == 415
    assert caught.value.headers == {
        "Accept-Patch": "application/json, application/x-www-form-urlencoded, multipart/form-data"
    }
    with pytest.raises(UnsupportedMediaType, match="Unsupported media type none"):
        body_kind("", has_body=True, method="PUT")
