"""The bearer middleware's token cache: what a revocation in this process and one elsewhere change at once."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from shop_identity import hash_token, make_token_resolver
from shop_identity.models import AccessToken
from shop_identity.services import forget_revoked
from shop_kernel import Principal
from tests.support.api import Api


def test_a_cached_principal_outlives_a_revocation_elsewhere_but_not_one_in_this_process(
    client: TestClient[Litestar], api: Api
) -> None:
    me = api.customer()
    resolve = make_token_resolver(api.alchemy.create_session_maker(), cache_seconds=60)
    uncached = make_token_resolver(api.alchemy.create_session_maker(), cache_seconds=0)

    async def scenario(session: AsyncSession) -> tuple[Principal | None, ...]:
        first = await resolve(me.token)
        # revoked behind this process's back, as another replica would: the cached principal is still served
        await session.execute(
            update(AccessToken)
            .where(AccessToken.token_hash == hash_token(me.token))
            .values(revoked_at=datetime.now(UTC))
        )
        await session.commit()
        cached, fresh = await resolve(me.token), await uncached(me.token)
        forget_revoked(hash_token(me.token))  # what this process's revocations call once they have committed
        return first, cached, fresh, await resolve(me.token)

    first, cached, fresh, after_forget = api.run(scenario)
    assert first is not None
    assert first.user_id == me.id
    assert cached == first
    assert fresh is None
    assert after_forget is None
