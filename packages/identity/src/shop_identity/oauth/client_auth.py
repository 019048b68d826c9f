"""How a client identifies itself at the token and revocation endpoints, and what it is told when it fails.

A public client (registered with `token_endpoint_auth_method=none`) has no secret. It names itself with
`client_id` in the body, or, as requests-oauthlib does by default, with HTTP Basic carrying its id and an
empty password: both are the `none` method (decision 112). Any secret from a public client, or a missing or
wrong one from a confidential client, is `invalid_client` with a description that says what to send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.util import extract_basic_authorization

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from authlib.oauth2.rfc6749 import OAuth2Request

__all__ = ("authenticate_public_client", "explain_failed_client_authentication")

GENERIC_FAILURE = "The client cannot authenticate with methods"
PUBLIC_HOW = (
    "send client_id in the request body and no secret (requests-oauthlib: fetch_token(..., include_client_id=True)), "
    "or HTTP Basic with the client id and an empty password"
)
CONFIDENTIAL_HOW = (
    "send its client secret, as HTTP Basic with the client id and secret (client_secret_basic) "
    "or as client_id and client_secret in the request body (client_secret_post)"
)


def authenticate_public_client(query_client: Callable[[str], Any], request: OAuth2Request) -> Any:
    """The `none` method: the client id from the body, or from HTTP Basic with an empty password.

    Returns None when the request is not shaped like `none` (it carries a secret, or no client id), so
    authlib goes on to its failure; whether the client found may use `none` is authlib's next check.
    """
    if request.form.get("client_secret"):
        return None
    basic_id, basic_secret = extract_basic_authorization(request.headers)
    body_id = request.payload.client_id
    if basic_id is None:
        client_id = body_id
    elif basic_secret:
        return None
    elif body_id and body_id != basic_id:
        raise InvalidRequestError("client_id in the body differs from the client id in the HTTP Basic header.")
    else:
        client_id = basic_id
    if not client_id:
        return None
    client = query_client(client_id)
    if client is None:
        raise InvalidClientError(
            status_code=401 if basic_id else 400, description="The client does not exist on this server."
        )
    return client


def explain_failed_client_authentication(
    query_client: Callable[[str], Any], request: OAuth2Request, methods: Sequence[str]
) -> str:
    """What was wrong with the client's credentials, and what it should send instead."""
    basic_id, basic_secret = extract_basic_authorization(request.headers)
    client_id = basic_id or request.payload.client_id
    sent_secret = bool(basic_secret or request.form.get("client_secret"))
    if not client_id:
        return (
            "No client credentials. A public client must "
            + PUBLIC_HOW
            + "; a confidential client must "
            + CONFIDENTIAL_HOW
            + "."
        )
    client = query_client(client_id)
    if client is None:  # pragma: no cover - authlib reports an unknown client before it gets here
        return "The client does not exist on this server."
    if client.view.is_public:
        if "none" not in methods:
            return f"Client {client_id} is public; this endpoint serves confidential clients only."
        return f"Client {client_id} is public and has no secret, but a secret was sent: " + PUBLIC_HOW + "."
    if sent_secret:
        return f"The client secret is not the one issued to client {client_id}."
    return f"Client {client_id} is confidential: " + CONFIDENTIAL_HOW + "."
