"""The schema of the product search index, version 1 (migration 0011), as SQL per dialect.

Migration 0011 runs it, and so does `metadata.create_all` (a sibling service that mounts `CatalogPlugin` on
tables it creates itself, tests/standalone): `models` runs it after creating the product table. A later
change of the index is a version 2 beside this one and a migration of its own; this one stays as it is.
"""

from __future__ import annotations

from typing import Any

__all__ = ("SCHEMA_V1_DOWN", "SCHEMA_V1_UP", "create_search_schema")

_SQLITE_UP = (
    # external content: the product table keeps the text, the index only its words; no column sizes (a
    # twelfth of the index), which only BM25 ranking reads
    """CREATE VIRTUAL TABLE IF NOT EXISTS catalog_product_search USING fts5(
        name, sku, description,
        content='catalog_product', content_rowid='id', columnsize=0,
        tokenize='unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER catalog_product_search_insert AFTER INSERT ON catalog_product BEGIN
        INSERT INTO catalog_product_search(rowid, name, sku, description)
        VALUES (new.id, new.name, new.sku, new.description);
    END""",
    """CREATE TRIGGER catalog_product_search_delete AFTER DELETE ON catalog_product BEGIN
        INSERT INTO catalog_product_search(catalog_product_search, rowid, name, sku, description)
        VALUES ('delete', old.id, old.name, old.sku, old.description);
    END""",
    # an update that leaves the text as it was (an upsert of prices, a stock change) leaves the index alone
    """CREATE TRIGGER catalog_product_search_update AFTER UPDATE OF name, sku, description ON catalog_product
    WHEN old.name IS NOT new.name OR old.sku IS NOT new.sku OR old.description IS NOT new.description BEGIN
        INSERT INTO catalog_product_search(catalog_product_search, rowid, name, sku, description)
        VALUES ('delete', old.id, old.name, old.sku, old.description);
        INSERT INTO catalog_product_search(rowid, name, sku, description)
        VALUES (new.id, new.name, new.sku, new.description);
    END""",
    "INSERT INTO catalog_product_search(catalog_product_search) VALUES ('rebuild')",
    # the index's words, read by word: the typo lookup asks which variants of a word exist
    "CREATE VIRTUAL TABLE IF NOT EXISTS catalog_product_search_vocab USING fts5vocab(catalog_product_search, 'row')",
)
_SQLITE_DOWN = (
    "DROP TABLE IF EXISTS catalog_product_search_vocab",
    "DROP TRIGGER IF EXISTS catalog_product_search_update",
    "DROP TRIGGER IF EXISTS catalog_product_search_delete",
    "DROP TRIGGER IF EXISTS catalog_product_search_insert",
    "DROP TABLE IF EXISTS catalog_product_search",
)

_POSTGRESQL_UP = (
    "CREATE EXTENSION IF NOT EXISTS unaccent",  # trusted: a database owner may create it
    # Punctuation becomes space first, so the parser sees the words the application cuts a query into ("1.5",
    # "a-b", "x/y" and e-mail addresses would otherwise be single tokens). IMMUTABLE although unaccent() is
    # STABLE (its rules file could change): the usual price of using it in an index expression or trigger.
    """CREATE OR REPLACE FUNCTION catalog_search_fold(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT lower(public.unaccent('public.unaccent'::regdictionary,
                                     regexp_replace(coalesce($1, ''), '[[:punct:]]', ' ', 'g')))
    $$""",
    """CREATE OR REPLACE FUNCTION catalog_product_search_document(name text, sku text, description text)
    RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT setweight(to_tsvector('simple'::regconfig, catalog_search_fold(sku)), 'A')
            || setweight(to_tsvector('simple'::regconfig, catalog_search_fold(name)), 'B')
            || setweight(to_tsvector('simple'::regconfig, catalog_search_fold(description)), 'D')
    $$""",
    # A query's words, delimited by `#` (never in a word: words are letters and digits), folded as documents
    # are; then the delimiters become quotes. A quote that unaccent makes of a letter (U+02BC, U+0149) becomes a
    # space, as it splits the document's word: it never ends a quoted word early.
    """CREATE OR REPLACE FUNCTION catalog_search_query(text) RETURNS tsquery LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT to_tsquery('simple'::regconfig, replace(replace(
            lower(public.unaccent('public.unaccent'::regdictionary, $1)), '''', ' '), '#', ''''))
    $$""",
    "ALTER TABLE catalog_product ADD COLUMN search_document tsvector",
    """CREATE OR REPLACE FUNCTION catalog_product_search_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_document := catalog_product_search_document(NEW.name, NEW.sku, NEW.description);
        RETURN NEW;
    END
    $$""",
    """CREATE TRIGGER catalog_product_search_insert BEFORE INSERT
        ON catalog_product FOR EACH ROW EXECUTE FUNCTION catalog_product_search_trigger()""",
    """CREATE TRIGGER catalog_product_search_update BEFORE UPDATE OF name, sku, description ON catalog_product
        FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.sku IS DISTINCT FROM NEW.sku
                           OR OLD.description IS DISTINCT FROM NEW.description)
        EXECUTE FUNCTION catalog_product_search_trigger()""",
    "UPDATE catalog_product SET search_document = catalog_product_search_document(name, sku, description)",
    "CREATE INDEX ix_catalog_product_search_document ON catalog_product USING gin (search_document)",
    # SKUs that start with the query: LIKE 'abc%' on lower(sku), whatever the database's collation. The unique
    # index on lower(sku) is rebuilt with `text_pattern_ops`, which answers equality and prefixes alike, rather
    # than adding a second index of the same keys (30 MB at 1,000,000 products; decision 190).
    "DROP INDEX uq_catalog_product_sku",
    "CREATE UNIQUE INDEX uq_catalog_product_sku ON catalog_product (lower(sku) text_pattern_ops)",
)
_POSTGRESQL_DOWN = (
    "DROP INDEX IF EXISTS uq_catalog_product_sku",
    "CREATE UNIQUE INDEX uq_catalog_product_sku ON catalog_product (lower(sku))",
    "DROP TRIGGER IF EXISTS catalog_product_search_update ON catalog_product",
    "DROP TRIGGER IF EXISTS catalog_product_search_insert ON catalog_product",
    "DROP FUNCTION IF EXISTS catalog_product_search_trigger()",
    "ALTER TABLE catalog_product DROP COLUMN IF EXISTS search_document",
    "DROP FUNCTION IF EXISTS catalog_product_search_document(text, text, text)",
    "DROP FUNCTION IF EXISTS catalog_search_query(text)",
    "DROP FUNCTION IF EXISTS catalog_search_fold(text)",
)


SCHEMA_V1_UP = {"sqlite": _SQLITE_UP, "postgresql": _POSTGRESQL_UP}
SCHEMA_V1_DOWN = {"sqlite": _SQLITE_DOWN, "postgresql": _POSTGRESQL_DOWN}


def create_search_schema(_table: Any, connection: Any, **_kw: Any) -> None:
    """An `after_create` listener of the product table: the index, its triggers and functions."""
    for statement in SCHEMA_V1_UP.get(connection.dialect.name, ()):
        connection.exec_driver_sql(statement)
