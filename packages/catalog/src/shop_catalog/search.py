"""Full-text product search: what a `search` query means, and the index that answers it (docs/search.md).

The index is the database's own, kept by triggers in the transaction of every product write (migration
0011), so a write through the ORM, a Core bulk insert or a rolled-back upload all leave it exact:

- **SQLite:** an FTS5 table over `name`, `sku` and `description` (external content: the product table holds
  the text, the index only its tokens), tokenizer `unicode61 remove_diacritics 2`.
- **PostgreSQL:** a `tsvector` column weighted by field (SKU `A`, name `B`, description `D`), with a GIN index;
  the text is folded by `unaccent` and `lower` before the `simple` configuration splits it.

A query is cut into words here, in Python, the way both indexes cut text (runs of letters and digits; marks
dropped, lower case), and each word reaches the database only as a quoted term inside one bound parameter:
nothing a user types is ever read as FTS5 or tsquery syntax. Results come in tiers of relevance
(`RELEVANCE_TIERS`), each read in the order of its ids, so the first page of a word half the catalog contains
costs what a page of any list costs (decision 172).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Literal

from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
)

from shop_catalog.models import Product

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from sqlalchemy import Select
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = (
    "MAX_WORDS",
    "SEARCH_INDEX_NAMES",
    "SearchQuery",
    "parse_search",
    "rebuild_search_index",
    "search_owns",
    "typo_variants",
)

MAX_WORDS = 8
"""Words of a query past this many are ignored: each costs an index lookup, a typo-tolerant one hundreds."""
TYPO_MIN_LETTERS = 5
"""A word of letters this long may carry one typo (an insertion, deletion, substitution or swap of two neighbours);
a word with a digit never does: `00001234` and `00001233` are two model numbers, not one with a typo."""
TYPO_MAX_LETTERS = 24
"""Longer words get no typo: their variants grow with their length (about 70 per letter), real words do not."""
TYPO_MAX_WORDS = 3
"""At most this many words of a query are looked up with typos (the longest ones)."""
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_WORD = re.compile(r"[^\W_]+")

SEARCH_INDEX_NAMES = frozenset(
    {
        "catalog_product_search",  # SQLite's FTS5 table, and its shadow tables below
        "catalog_product_search_data",
        "catalog_product_search_idx",
        "catalog_product_search_docsize",
        "catalog_product_search_config",
        "catalog_product_search_vocab",
        "search_document",  # PostgreSQL's tsvector column of catalog_product
        "ix_catalog_product_search_document",
    }
)
"""Schema objects the search migration owns and the models do not describe (the ORM never reads them)."""


PRODUCT: Table = Product.__table__  # type: ignore[assignment]
FTS = Table(
    "catalog_product_search",
    MetaData(),  # not the shared metadata: the migration creates it, Alembic must not
    Column("rowid", Integer, primary_key=True),
    Column("catalog_product_search", String),
)
"""SQLite's FTS5 table; its hidden column of the table's name takes MATCH."""
VOCABULARY = Table(
    "catalog_product_search_vocab", MetaData(), Column("term", String), Column("doc", Integer), Column("cnt", Integer)
)
"""SQLite: the words of the FTS5 index (an `fts5vocab` table: the index itself, read by word)."""
SEARCH_DOCUMENT: ColumnElement[Any] = literal_column("catalog_product.search_document")
"""PostgreSQL's tsvector column, which no model maps (the ORM never reads it)."""


def search_owns(name: str | None) -> bool:
    """For Alembic's `include_object`: a table, column or index that belongs to the search index."""
    return name in SEARCH_INDEX_NAMES


Tier = Literal["sku_exact", "sku_prefix", "name", "anywhere", "typo"]
RELEVANCE_TIERS: tuple[Tier, ...] = ("sku_exact", "sku_prefix", "name", "anywhere", "typo")
"""Relevance, best first; each product is listed once, in the first tier it falls in, newest first within it."""


def _latin(ch: str) -> bool:
    return ch < "\u0250" or "\u1e00" <= ch <= "\u1eff"


def fold(text: str) -> str:
    """Lower case, Latin letters without their accents (`Café` -> `cafe`), as both indexes store words: FTS5's
    `remove_diacritics` folds Latin letters only (`й` and `ά` stay), and PostgreSQL's `unaccent`, applied to the
    query in the database as well, folds what else its rules name (Cyrillic yo to ye) on both sides alike."""
    return "".join(
        "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)) if _latin(ch) else ch
        for ch in text
    ).lower()


def typo_variants(word: str) -> list[str]:
    """Every string one edit away from `word`: deletions, swaps of neighbours, substitutions and insertions of
    a letter a-z, a digit or a letter of the word itself (so words of any script get deletions and swaps, and
    substitutions among their own letters)."""
    letters = sorted(set(_ALPHABET) | set(word))
    variants: set[str] = set()
    for i in range(len(word) + 1):
        head, tail = word[:i], word[i:]
        variants.update(head + ch + tail for ch in letters)
        if tail:
            variants.add(head + tail[1:])
            variants.update(head + ch + tail[1:] for ch in letters)
            if len(tail) > 1:
                variants.add(head + tail[1] + tail[0] + tail[2:])
    variants.discard(word)
    return sorted(variants)


@dataclass(frozen=True)
class SearchQuery:
    """A `search` value cut into words, with the match of each tier of relevance.

    Every word must match; the last one also as the start of a word (it may be half typed), the others whole,
    as search-as-you-type engines do: a prefix costs the merge of every indexed word that starts with it, which
    for `b` or `be` is most of the catalog. `typos` holds, for the longest words, the indexed words one edit away
    (`with_typos`); without any, a query has no typo tier."""

    text: str
    """The query as typed, trimmed: compared to SKUs as they are (case aside)."""
    words: tuple[str, ...]
    typos: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def typo_words(self) -> tuple[str, ...]:
        """The words looked for with a typo: the longest ones, of `TYPO_MIN_LETTERS` or more."""
        long = sorted(
            (w for w in self.words if TYPO_MIN_LETTERS <= len(w) <= TYPO_MAX_LETTERS and w.isalpha()),
            key=len,
            reverse=True,
        )
        return tuple(long[:TYPO_MAX_WORDS])

    def with_typos(self, indexed: Iterable[str]) -> SearchQuery:
        """This query, its typo words matching also the `indexed` words one edit away from them."""
        known = set(indexed)
        typos = tuple(
            (word, found) for word in self.typo_words if (found := tuple(v for v in typo_variants(word) if v in known))
        )
        return replace(self, typos=typos)

    def tiers(self) -> tuple[Tier, ...]:
        return RELEVANCE_TIERS if self.typos else RELEVANCE_TIERS[:-1]

    def sku_like(self) -> str:
        """PostgreSQL: a LIKE pattern for SKUs that start with the query (`/` escapes)."""
        escaped = self.text.replace("/", "//").replace("%", "/%").replace("_", "/_")
        return escaped + "%"

    def _prefix(self, word: str) -> bool:
        return word == self.words[-1]

    # ---- SQLite FTS5 -------------------------------------------------------------------------------

    def fts5(self, tier: Tier | Literal["all"]) -> str:
        """The MATCH expression of a tier; `all`: every product the query finds, whatever its tier."""
        every = _fts5_and(self._fts5_term(w) for w in self.words)
        name = "{name} : " + every
        if tier == "name":
            return name
        if tier == "anywhere":
            return f"{every} NOT {name}"
        if not self.typos:
            return every
        alternatives = dict(self.typos)
        fuzzy = _fts5_and(
            "(" + " OR ".join([self._fts5_term(w), *(f'"{v}"' for v in alternatives[w])]) + ")"
            if w in alternatives
            else self._fts5_term(w)
            for w in self.words
        )
        return f"{fuzzy} NOT {every}" if tier == "typo" else fuzzy

    def _fts5_term(self, word: str) -> str:
        return f'"{word}"*' if self._prefix(word) else f'"{word}"'

    # ---- PostgreSQL tsquery ------------------------------------------------------------------------

    def tsquery(self, tier: Tier | Literal["all"]) -> str:
        """The tsquery text of a tier (weights: SKU A, name B, description D; words delimited by `#`, see
        `catalog_search_query`); the products of the tiers before
        it are left out by a second condition (`tsquery_before`), which PostgreSQL estimates apart: inside one
        tsquery a `!` of a rare match reads as "nearly everything", and the planner walks the whole table."""
        every = " & ".join(self._ts_term(w) for w in self.words)
        if tier == "name":
            return " & ".join(self._ts_term(w, "B") for w in self.words)
        if tier == "anywhere" or not self.typos:
            return every
        alternatives = dict(self.typos)
        return " & ".join(
            "(" + " | ".join([self._ts_term(w), *(f"#{v}#" for v in alternatives[w])]) + ")"
            if w in alternatives
            else self._ts_term(w)
            for w in self.words
        )

    def tsquery_before(self, tier: Tier) -> str:
        """What the tiers before `tier` matched, which it leaves out."""
        return self.tsquery("name" if tier == "anywhere" else "anywhere")

    def _ts_term(self, word: str, weight: str = "") -> str:
        """A word as `catalog_search_query` takes it: delimited by `#`, which it turns into quotes."""
        return f"#{word}#:*{weight}" if self._prefix(word) else f"#{word}#" + (f":{weight}" if weight else "")


def _fts5_and(terms: Iterable[str]) -> str:
    return "(" + " AND ".join(terms) + ")"


@lru_cache(maxsize=1024)
def parse_search(text: str | None) -> SearchQuery | None:
    """The words of a query (at most `MAX_WORDS`, each once); None when it has none (`""`, `"--"`, `"*"`), which
    lists as if there were no `search` at all."""
    if not text or not text.strip():
        return None
    words: list[str] = []
    for word in _WORD.findall(fold(text)):
        if word not in words:
            words.append(word)
    if not words:
        return None
    return SearchQuery(text=text.strip(), words=tuple(words[:MAX_WORDS]))


async def rebuild_search_index(session: AsyncSession) -> int:
    """Rebuild the index from the products (recovery only: triggers keep it in step); returns the products
    indexed. Runs in the caller's transaction, which the caller commits."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(
            text("UPDATE catalog_product SET search_document = catalog_product_search_document(name, sku, description)")
        )
    else:
        await session.execute(text("INSERT INTO catalog_product_search(catalog_product_search) VALUES ('rebuild')"))
    return int(await session.scalar(text("SELECT count(*) FROM catalog_product")) or 0)


# ---- SQL on the product table, values bound by name (see `ProductFilters.values`) -------------------------


def matches(dialect: str, parameter: str) -> ColumnElement[bool]:
    """The product's text matches the bound query `parameter` (FTS5 expression or tsquery text)."""
    if dialect == "postgresql":
        query = func.catalog_search_query(bindparam(parameter, type_=String()))
        return SEARCH_DOCUMENT.op("@@")(query)
    in_index = select(FTS.c.rowid).where(FTS.c.catalog_product_search.op("MATCH")(bindparam(parameter, type_=String())))
    return PRODUCT.c.id.in_(in_index)


def sku_is(dialect: str) -> ColumnElement[bool]:
    """The SKU is the query, case aside."""
    return func.lower(PRODUCT.c.sku) == func.lower(bindparam("search_sku", type_=String()))


def sku_starts(dialect: str) -> ColumnElement[bool]:
    """The SKU starts with the query, case aside, read from an index on `lower(sku)`: on SQLite a range of the
    unique index (binary order is code point order), on PostgreSQL a LIKE on its `text_pattern_ops` index."""
    if dialect == "postgresql":
        return func.lower(PRODUCT.c.sku).like(func.lower(bindparam("search_sku_like", type_=String())), escape="/")
    low = func.lower(bindparam("search_sku", type_=String()))
    high = low.op("||")(func.char(0x10FFFF))
    return (func.lower(PRODUCT.c.sku) >= low) & (func.lower(PRODUCT.c.sku) < high)


def found(dialect: str) -> ColumnElement[bool]:
    """Every product the query finds, whatever its tier: its text matches, or its SKU starts with the query."""
    return matches(dialect, "search_match") | sku_starts(dialect)


@cache
def indexed_words(dialect: str) -> Select[Any]:
    """Which of the bound `variants` are words of the index: SQLite reads its vocabulary by word; PostgreSQL,
    keeping none, asks the GIN index for one product with the word."""
    if dialect == "postgresql":
        variant = func.unnest(bindparam("variants", type_=ARRAY(String()))).column_valued("variant")
        somewhere: Select[Any] = (
            select(literal_column("1"))
            .select_from(PRODUCT)
            .where(SEARCH_DOCUMENT.op("@@")(func.catalog_search_query(literal("#") + variant + literal("#"))))
        )
        return select(variant).where(exists(somewhere))
    return select(VOCABULARY.c.term).where(VOCABULARY.c.term.in_(bindparam("variants", expanding=True)))


def search_values(query: SearchQuery, dialect: str) -> dict[str, Any]:
    values: dict[str, Any] = {"search_sku": query.text}
    if dialect == "postgresql":
        values["search_match"] = query.tsquery("all")
        values["search_sku_like"] = query.sku_like()
    else:
        values["search_match"] = query.fts5("all")
    return values


def tier_values(query: SearchQuery, tier: Tier, dialect: str) -> dict[str, str]:
    if dialect == "postgresql":
        before = {"tier_before": query.tsquery_before(tier)} if tier in ("anywhere", "typo") else {}
        return {"tier_match": query.tsquery(tier), **before}
    return {"tier_match": query.fts5(tier)}
