"""`GET /api/products/?search=`: full-text search on both databases (docs/search.md, decision 172)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shop_catalog import rebuild_search_index
from tests.factories import ProductWriteFactory
from tests.support.api import Api, Caller
from tests.support.catalog import Catalog

URL = "/api/products/"
BULK = "/api/products/bulk_upload/"


def upload(client: TestClient[Litestar], staff: Caller, *products: tuple[str, str, str], **fields: Any) -> list[int]:
    """Products (name, SKU, description) in one bulk upload, in this order (ids ascending); their ids."""
    body = [
        msgspec.to_builtins(ProductWriteFactory.build(name=name, sku=sku, description=description, **fields))
        for name, sku, description in products
    ]
    response = client.post(BULK, json=body, headers=staff.headers)
    assert response.status_code == 201, response.text
    return [product["id"] for product in response.json()]


def names(client: TestClient[Litestar], search: str, **params: Any) -> list[str]:
    response = client.get(URL, params={"search": search, "page_size": 50, **params})
    assert response.status_code == 200, response.text
    return [product["name"] for product in response.json()["results"]]


CATALOG = [
    ("iPhone 15", "APL-IP15", "A smartphone."),
    ("Phone case", "CASE-1", "Fits the iPhone 15 and 15 Pro."),
    ("Café Bustelo Espresso", "CAF-1", "Dark roast coffee."),
    ("Blender Jar", "BL-5000", "A spare jar."),
    ("Blender Pro 500", "BL-500", "Crushes ice."),
    ("Kettle", "KET-1", "Boils water for tea."),
    ("Tea infuser", "TEA-INF", "Steel."),
    ("Kikombe cha chai", "SW-1", "Kikombe kizuri cha udongo."),
    ("Электрический чайник", "RU-1", "Стальной."),
    ("Müsli Früchte", "DE-1", "Hafer und Äpfel."),
    ("抹茶ラテ", "JP-1", "Matcha."),
    ("Crème brûlée torch", "FR-1", "For desserts."),
]

RELEVANCE = [
    ("bl-500", ["Blender Pro 500", "Blender Jar"]),  # SKU equal to the query, then SKUs starting with it
    ("BL-50", ["Blender Pro 500", "Blender Jar"]),  # both SKUs start with it: newest first
    ("iph", ["iPhone 15", "Phone case"]),  # a prefix while typing; the name before the description
    ("tea", ["Tea infuser", "Kettle"]),  # the name outranks the description, though the kettle is older
    ("cafe", ["Café Bustelo Espresso"]),  # accents fold
    ("CAFÉ espresso", ["Café Bustelo Espresso"]),  # several words, any case
    ("creme brulee", ["Crème brûlée torch"]),
    ("blendr", ["Blender Pro 500", "Blender Jar"]),  # one typo in a long word
    ("espreso", ["Café Bustelo Espresso"]),
    ("blender jar", ["Blender Jar"]),  # every word must match
    ("chai", ["Kikombe cha chai"]),  # Swahili
    ("kikombe udongo", ["Kikombe cha chai"]),  # a name word and a description word
    ("ЧАЙНИК", ["Электрический чайник"]),  # Cyrillic, case folded
    ("musli apfel", ["Müsli Früchte"]),
    ("抹茶", ["抹茶ラテ"]),
    ("chal", []),  # no typo allowed in a word of four letters
    ("blender ice", ["Blender Pro 500"]),
]


def test_relevance(client: TestClient[Litestar], staff: Caller) -> None:
    upload(client, staff, *CATALOG)
    for query, expected in RELEVANCE:
        assert names(client, query) == expected, query


def test_search_combines_with_filters_and_an_explicit_ordering_wins(
    client: TestClient[Litestar], catalog: Catalog, staff: Caller
) -> None:
    lamps = catalog.category("Lamps")
    desk = catalog.category("Desk", lamps)
    catalog.product(desk, name="Desk lamp", sku="L-1", description="", price="30.00", stock_quantity=0)
    catalog.product(lamps, name="Floor lamp", sku="L-2", description="", price="80.00", stock_quantity=5)
    catalog.product(name="Lamp oil", sku="L-3", description="", price="5.00", stock_quantity=5)
    hidden = catalog.product(lamps, name="Old lamp", sku="L-4", description="", price="10.00", is_active=False)
    assert names(client, "lamp") == ["Lamp oil", "Floor lamp", "Desk lamp"]
    assert names(client, "lamp", ordering="price") == ["Lamp oil", "Desk lamp", "Floor lamp"]
    assert names(client, "lamp", category=lamps["id"]) == ["Floor lamp", "Desk lamp"]
    assert names(client, "lamp", category=lamps["id"], min_price="50") == ["Floor lamp"]
    assert names(client, "lamp", in_stock="true", max_price="50") == ["Lamp oil"]
    assert (
        client.get(f"/api/products/categories/{desk['id']}/products/", params={"search": "lamp"}).json()["count"] == 1
    )
    staff_view = client.get(URL, params={"search": "lamp", "is_active": "false"}, headers=staff.headers).json()
    assert [p["id"] for p in staff_view["results"]] == [hidden["id"]]
    assert client.get(URL, params={"search": "lamp"}, headers=staff.headers).json()["count"] == 4


INJECTIONS = [
    "#",
    '"',
    "*",
    "^",
    "-",
    ":",
    "(",
    ")",
    "'",
    "&",
    "|",
    "!",
    "<->",
    ":*",
    "\\",
    "{}:",
    "%",
    "_",
    "+",
    "~",
    "^*",
]


def test_query_syntax_is_never_interpreted(client: TestClient[Litestar], staff: Caller) -> None:
    upload(client, staff, ("Blender Jar", "J-1", "Glass."), ("Blender Pro", "P-1", "Steel."), ("Chai", "C-1", "Tea."))
    everything = ["Chai", "Blender Pro", "Blender Jar"]
    for syntax in INJECTIONS:
        assert names(client, syntax) == everything, syntax  # symbols only: as if there were no search
        assert names(client, f"{syntax}jar{syntax}") == ["Blender Jar"], syntax
        assert names(client, f"blender {syntax}pro") == ["Blender Pro"], syntax
        assert names(client, f'"blender{syntax} jar"') == ["Blender Jar"], syntax
    for words in ("blender OR chai", "blender NOT jar", "NEAR(blender chai)", "blender AND NOT pro", "{name}: jar"):
        assert names(client, words) == [], words  # every word must match: none is an operator
    for letters in ("jar\u02bcs", "\u0149", "\u02b9blender"):  # letters that PostgreSQL's unaccent turns into a quote
        names(client, letters)  # answered (200), whatever each database makes of them
    longest = " ".join(f"{'blender' * 3}{n}" for n in "abcdefgh") + " " + "x" * 16  # 200 characters, 9 words
    assert names(client, longest) == []  # eight words kept, three of them looked up with a typo: still an answer
    assert names(client, "-jar blender") == ["Blender Jar"]
    assert names(client, "blender -jar") == ["Blender Jar"]
    assert names(client, "   ") == everything


async def _count_in_index(session: AsyncSession, word: str) -> int:
    """Products the index itself finds for `word`, read past the product table."""
    if session.bind.dialect.name == "postgresql":
        statement = "SELECT count(*) FROM catalog_product WHERE search_document @@ to_tsquery('simple', :word)"
    else:
        statement = "SELECT count(*) FROM catalog_product_search WHERE catalog_product_search MATCH :word"
    return int(await session.scalar(text(statement), {"word": word}) or 0)


def _fail_links_to(api: Api, category_id: int | None) -> None:
    """A database trigger that refuses links to `category_id` (None: drops it): fails an upload after its
    products were inserted."""

    async def run(session: AsyncSession) -> None:
        postgres = session.bind.dialect.name == "postgresql"
        if category_id is None:
            await session.execute(
                text("DROP TRIGGER test_refuse_link" + (" ON catalog_product_category" if postgres else ""))
            )
        elif postgres:
            await session.execute(
                text(
                    "CREATE OR REPLACE FUNCTION test_refuse_link() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
                )
            )
            await session.execute(
                text(
                    "CREATE TRIGGER test_refuse_link BEFORE INSERT ON catalog_product_category FOR EACH ROW "
                    f"WHEN (NEW.category_id = {int(category_id)}) EXECUTE FUNCTION test_refuse_link()"
                )
            )
        else:
            await session.execute(
                text(
                    "CREATE TRIGGER test_refuse_link BEFORE INSERT ON catalog_product_category "
                    f"WHEN NEW.category_id = {int(category_id)} BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        await session.commit()

    api.run(run)


def test_the_index_changes_in_the_transaction_of_each_write(
    client: TestClient[Litestar], api: Api, catalog: Catalog, staff: Caller
) -> None:
    spices = catalog.category("Spices")
    body = [
        {
            "name": f"Zanzibar clove {i}",
            "price": "3.00",
            "sku": f"Z-{i}",
            "description": "",
            "categories": [spices["id"]],
        }
        for i in range(3)
    ]
    _fail_links_to(api, spices["id"])
    try:
        failed = client.post(BULK, json=body, headers=staff.headers)
    finally:
        _fail_links_to(api, None)
    assert failed.status_code >= 400
    assert api.run(lambda session: _count_in_index(session, "zanzibar")) == 0
    assert names(client, "zanzibar") == []

    created = client.post(BULK, json=body, headers=staff.headers)
    assert created.status_code == 201
    assert names(client, "zanzibar") == ["Zanzibar clove 2", "Zanzibar clove 1", "Zanzibar clove 0"]
    first = created.json()[0]["id"]

    renamed = client.patch(f"{URL}{first}/", json={"name": "Pemba cardamom"}, headers=staff.headers)
    assert renamed.status_code == 200
    assert names(client, "pemba") == ["Pemba cardamom"]
    assert names(client, "zanzibar") == ["Zanzibar clove 2", "Zanzibar clove 1"]
    upserted = client.post(
        BULK, params={"mode": "upsert"}, json=[{**body[1], "name": "Unguja nutmeg"}], headers=staff.headers
    )
    assert upserted.status_code == 201
    assert names(client, "unguja") == ["Unguja nutmeg"]
    assert client.patch(f"{URL}{first}/", json={"is_active": False}, headers=staff.headers).status_code == 200
    assert names(client, "pemba") == []
    assert client.delete(f"{URL}{created.json()[2]['id']}/", headers=staff.headers).status_code == 204
    assert names(client, "zanzibar clove") == []
    assert api.run(lambda session: _count_in_index(session, "zanzibar")) == 0

    async def rebuild(session: AsyncSession) -> int:
        indexed = await rebuild_search_index(session)
        await session.commit()
        return indexed

    assert api.run(rebuild) == 2  # `shop search-reindex`: the same index again
    assert names(client, "unguja nutmeg") == ["Unguja nutmeg"]
    assert names(client, "pemba", is_active="false") == []  # staff only: anonymous callers see active products
    assert client.get(URL, params={"search": "pemba"}, headers=staff.headers).json()["count"] == 1


@pytest.mark.parametrize("page_size", [3])
def test_pages_under_relevance_are_stable(client: TestClient[Litestar], staff: Caller, page_size: int) -> None:
    products = [(f"Lamp shade {i}", f"SHADE-{i}", "") for i in range(4)]
    products += [(f"Reading light {i}", f"RL-{i}", "A lamp for reading.") for i in range(4)]
    products += [(f"Lampe {i}", f"LAMP-{i}", "") for i in range(3)]  # SKUs start with the query
    products += [("Lamp", "X-LAMP", "")]
    upload(client, staff, *products)
    whole = client.get(URL, params={"search": "lamp", "page_size": 50}).json()
    assert whole["count"] == 12
    expected = [p["name"] for p in whole["results"]]
    assert expected == [
        "Lampe 2",  # SKU LAMP-2 starts with the query; newest first
        "Lampe 1",
        "Lampe 0",
        "Lamp",  # every word in the name
        "Lamp shade 3",
        "Lamp shade 2",
        "Lamp shade 1",
        "Lamp shade 0",
        "Reading light 3",  # in the description only
        "Reading light 2",
        "Reading light 1",
        "Reading light 0",
    ]
    paged: list[str] = []
    for page in range(1, 5):
        answer = client.get(URL, params={"search": "lamp", "page_size": page_size, "page": page}).json()
        assert answer["count"] == 12
        paged += [p["name"] for p in answer["results"]]
    assert paged == expected
    assert client.get(URL, params={"search": "lamp", "page_size": page_size, "page": 5}).status_code == 404
