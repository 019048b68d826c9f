"""OWASP API10:2023 Unsafe consumption of APIs: Africa's Talking's answers and callbacks are untrusted input.

Outbound (the SMS job), against a real HTTP server on loopback that answers what we tell it to:
- a 2xx answer we cannot read (not JSON, the wrong shape, too large) may still mean the message went
  out, so it is not resent automatically: the row is `failed` at once with the reason and "check,
  then retry" (as for an interrupted send);
- a definite refusal (HTTP error, a redirect, a recipient `statusCode` other than 100-102, no
  recipient) and a slow answer are retried, then `failed` with the reason;
- nothing the provider sends can crash the job or the log write (control characters, NUL).
Inbound (delivery reports): a wrong secret is 404 before the body is read; a malformed or oversized
report is 4xx problem+json; a report for an unknown message is acknowledged and ignored; none writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.notify.test_notifications import log, place
from tests.security.conftest import is_problem
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog
from tests.support.fakes import Canned, FakeAfricasTalking, africas_talking, eventually
from tests.support.notify import SECRET, jobs

REPORTS = f"/api/notifications/sms/delivery-reports/{SECRET}/"


def recipients(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": list(entries)}}).encode()


def accepted(**fields: Any) -> dict[str, Any]:
    return {"statusCode": 101, "number": "+254712345678", "status": "Success", "messageId": "ATXid_9", **fields}


def sms_row(shop: TestClient[Litestar], staff: Caller, order: dict[str, Any], status: str) -> dict[str, Any] | None:
    rows = [row for row in log(shop, staff, order=order["order_number"], status=status) if row["channel"] == "sms"]
    return rows[0] if rows else None


UNREADABLE = [
    pytest.param(Canned(201, b"<html>Service Unavailable</html>", {"Content-Type": "text/html"}), id="not-json"),
    pytest.param(Canned(201, b""), id="empty"),
    pytest.param(Canned(200, b'{"SMSMessageData": '), id="truncated-json"),
    pytest.param(Canned(201, b'{"Recipients": []}'), id="no-SMSMessageData"),
    pytest.param(Canned(201, b'{"SMSMessageData": {"Recipients": "none"}}'), id="recipients-not-a-list"),
    pytest.param(Canned(201, recipients(accepted(statusCode="101"))), id="statusCode-a-string"),
    pytest.param(Canned(201, b'{"SMSMessageData": null}'), id="null"),
    pytest.param(Canned(201, b"[" * 5_000 + b"]" * 5_000), id="nested-5000-deep"),
    pytest.param(Canned(201, b"\x00\x01\x02 binary \xff\xfe garbage"), id="nul-and-binary"),
    pytest.param(Canned(201, recipients(accepted()) + b" " * 100_000), id="over-64-KiB"),
]


@pytest.mark.parametrize("answer", UNREADABLE)
def test_an_unreadable_answer_is_failed_once_with_the_reason_not_resent(
    shop: TestClient[Litestar], catalog: Catalog, api: Api, staff: Caller, at: FakeAfricasTalking, answer: Canned
) -> None:
    at.mode = answer
    failed_before, retries_before = jobs("failed"), jobs("retry")
    order = place(shop, catalog, api.customer(phone_number="0712345678"))
    failed = eventually(lambda: sms_row(shop, staff, order, "failed"), timeout=20)
    assert failed["attempts"] == 1
    assert "it may have been sent: check, then retry" in failed["last_error"]
    assert failed["last_error"].startswith(("Unreadable Africa's Talking answer", "Africa's Talking answered HTTP"))
    assert "\x00" not in failed["last_error"]
    assert "test-api-key" not in failed["last_error"]
    # the job has settled it as failed, and scheduled no retry: nothing can send it again on its own
    eventually(lambda: jobs("failed") > failed_before)
    assert jobs("retry") == retries_before
    assert at.started == 1  # no automatic resend of what may have gone out


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(
            Canned(200, recipients(accepted(statusCode=406, status="UserInBlacklist"))),
            "refused: UserInBlacklist (406)",
            id="http-200-with-a-refusal",
        ),
        pytest.param(Canned(201, recipients()), "No recipient accepted", id="no-recipients"),
        pytest.param(
            Canned(201, recipients(accepted(statusCode=403, status="Invalid\x00Phone\x1b[31m" + "x" * 5000))),
            "refused: Invalid\ufffdPhone\ufffd[31m",
            id="control-characters-in-the-status",
        ),
        pytest.param(Canned(401, b"The supplied authentication is invalid"), "HTTP 401", id="http-401"),
        pytest.param(Canned(503, b"\x00" * 50_000), "HTTP 503", id="http-503-binary"),
    ],
)
def test_a_definite_refusal_is_retried_then_failed_with_a_clean_reason(
    shop: TestClient[Litestar],
    catalog: Catalog,
    api: Api,
    staff: Caller,
    at: FakeAfricasTalking,
    answer: Canned,
    reason: str,
) -> None:
    at.mode = answer
    order = place(shop, catalog, api.customer(phone_number="0712345678"))
    failed = eventually(lambda: sms_row(shop, staff, order, "failed"), timeout=30)
    assert failed["attempts"] == 3
    assert reason in failed["last_error"]
    assert failed["last_error"].isprintable()
    assert len(failed["last_error"]) < 700
    assert at.started == 3


@pytest.fixture
def elsewhere() -> Iterator[FakeAfricasTalking]:
    with africas_talking() as other:
        yield other


def test_redirects_are_not_followed_and_the_api_key_stays_home(
    shop: TestClient[Litestar],
    catalog: Catalog,
    api: Api,
    staff: Caller,
    at: FakeAfricasTalking,
    elsewhere: FakeAfricasTalking,
) -> None:
    at.mode = Canned(307, b"", {"Location": f"{elsewhere.url}/version1/messaging"})
    order = place(shop, catalog, api.customer(phone_number="0712345678"))
    failed = eventually(lambda: sms_row(shop, staff, order, "failed"), timeout=30)
    assert "HTTP 307 (redirects are not followed)" in failed["last_error"]
    assert failed["attempts"] == 3
    assert elsewhere.received == []


@pytest.mark.notify(sms_timeout_seconds=0.5)
def test_an_answer_dripping_in_is_cut_at_the_deadline_and_retried(
    shop: TestClient[Litestar], catalog: Catalog, api: Api, staff: Caller, at: FakeAfricasTalking
) -> None:
    """Each byte arrives well inside httpx's read timeout (0.5 s); the whole answer would take a minute."""
    at.mode = Canned(201, recipients(accepted()), drip=0.2)
    order = place(shop, catalog, api.customer(phone_number="0712345678"))
    started = time.monotonic()
    failed = eventually(lambda: sms_row(shop, staff, order, "failed"), timeout=30)
    assert "did not answer in time" in failed["last_error"]
    assert failed["attempts"] == 3
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("message_id", ["ATXid_" + "9" * 5000, "ATX\x00id", "ATX\nid"])
def test_an_accepted_message_with_an_unusable_id_is_sent_without_one(
    shop: TestClient[Litestar], catalog: Catalog, api: Api, staff: Caller, at: FakeAfricasTalking, message_id: str
) -> None:
    at.mode = Canned(201, recipients(accepted(messageId=message_id)))
    order = place(shop, catalog, api.customer(phone_number="0712345678"))
    sent = eventually(lambda: sms_row(shop, staff, order, "sent"))
    assert sent["provider_message_id"] is None
    assert sent["attempts"] == 1


@pytest.fixture
def sent(shop: TestClient[Litestar], catalog: Catalog, api: Api, staff: Caller) -> dict[str, Any]:
    """An SMS Africa's Talking accepted as `ATXid_1`."""
    order = place(shop, catalog, api.customer(phone_number="0712345678"))
    row = eventually(lambda: sms_row(shop, staff, order, "sent"))
    assert row["provider_message_id"] == "ATXid_1"
    row["order_number"] = order["order_number"]
    return row


def unchanged(shop: TestClient[Litestar], staff: Caller, before: dict[str, Any]) -> bool:
    [after] = [row for row in log(shop, staff, order=before["order_number"]) if row["id"] == before["id"]]
    return all(after[key] == before[key] for key in ("status", "last_error", "updated_at", "provider_message_id"))


FORM = "application/x-www-form-urlencoded"
REPORT = {"id": "ATXid_1", "status": "Failed", "phoneNumber": "+254712345678", "failureReason": "AbsentSubscriber"}


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        pytest.param({"data": {**REPORT, "id": ""}}, 400, id="empty-id"),
        pytest.param({"data": {"status": "Failed"}}, 400, id="no-id"),
        pytest.param({"data": {**REPORT, "id": "A" * 201}}, 400, id="id-too-long"),
        pytest.param({"data": {**REPORT, "failureReason": "x" * 201}}, 400, id="reason-too-long"),
        pytest.param({"json": REPORT}, 400, id="json-instead-of-a-form"),
        pytest.param({"content": b"\xff\xfe\x00garbage=\x00", "headers": {"Content-Type": FORM}}, 400, id="binary"),
        pytest.param({"data": {**REPORT, "failureReason": "x" * 17_000}}, 413, id="over-16-KiB"),
        pytest.param(
            {"chunks": [b"id=ATXid_1&status=Failed&x=", b"y" * 17_000],
             "headers": {"Content-Type": FORM}},
            413,
            id="over-16-KiB-chunked",
        ),
    ],
)  # fmt: skip
def test_malformed_or_oversized_reports_are_4xx_and_write_nothing(
    shop: TestClient[Litestar], staff: Caller, sent: dict[str, Any], request_kwargs: dict[str, Any], status: int
) -> None:
    if "chunks" in request_kwargs:  # sent without Content-Length
        chunks = request_kwargs["chunks"]
        request_kwargs = {key: value for key, value in request_kwargs.items() if key != "chunks"}
        request_kwargs["content"] = iter(chunks)
    response = shop.post(REPORTS, **request_kwargs)
    assert response.status_code == status, response.text[:300]
    assert is_problem(response)
    assert unchanged(shop, staff, sent)


def test_a_wrong_secret_is_404_before_the_body_is_even_read(
    shop: TestClient[Litestar], staff: Caller, sent: dict[str, Any]
) -> None:
    for secret in ("wrong", SECRET[:-1], SECRET + "x", SECRET.upper()):
        for body in ({"data": REPORT}, {"content": b"\x00not a form", "headers": {"Content-Type": "text/plain"}}):
            response = shop.post(f"/api/notifications/sms/delivery-reports/{secret}/", **body)
            assert response.status_code == 404, (secret, response.text)
            assert is_problem(response)
    assert unchanged(shop, staff, sent)


def test_a_report_for_an_unknown_message_is_acknowledged_and_ignored(
    shop: TestClient[Litestar], staff: Caller, sent: dict[str, Any]
) -> None:
    """Not 4xx: a provider that retries refused callbacks would retry it forever; nothing is written."""
    for message_id in ("ATXid_404", "console-abc", "<uuid@shop.test>", "' OR 1=1 --"):
        response = shop.post(REPORTS, data={**REPORT, "id": message_id})
        assert response.status_code == 200
        assert response.json() == {"status": "ignored"}
    assert unchanged(shop, staff, sent)


def test_delivery_reports_are_off_without_a_secret(client: TestClient[Litestar]) -> None:
    """The default app (no AT_CALLBACK_SECRET) answers 404 to any secret, the empty one included."""
    for path in ("/api/notifications/sms/delivery-reports/x/", "/api/notifications/sms/delivery-reports/%20/"):
        response = client.post(path, data=REPORT)
        assert response.status_code == 404
        assert is_problem(response)
