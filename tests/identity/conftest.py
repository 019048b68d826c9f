"""Fixtures for the OAuth tests: the test client over https and a harness that registers clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.identity.oauth import OAuthHarness, over_https
from tests.support.api import Caller


@pytest.fixture
def https(client: TestClient[Litestar]) -> Iterator[TestClient[Litestar]]:
    with over_https(client) as secure:
        yield secure


@pytest.fixture
def oauth(https: TestClient[Litestar], staff: Caller) -> OAuthHarness:
    return OAuthHarness(https, staff)
