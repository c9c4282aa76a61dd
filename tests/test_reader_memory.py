"""``db.reader`` keeps a compiled statement only while its statement object lives (issue 19:
a ``WeakKeyDictionary`` whose values, the compiled statements, referenced their keys kept
every filtered page ever read)."""

from __future__ import annotations

import gc
import weakref

from sqlalchemy import select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from db import reader
from db.models import Post


def test_a_statement_built_for_one_request_is_freed_with_its_compiled_form() -> None:
    dialect = asyncpg_dialect()
    gone = []
    for i in range(20):
        statement = select(Post).where(Post.title.ilike(f"%soak{i}%")).limit(10)
        prepared = reader.prepare(statement, dialect)
        gone.append((weakref.ref(statement), weakref.ref(prepared)))
    del statement, prepared
    gc.collect()
    assert all(s() is None and p() is None for s, p in gone)


def test_a_live_statement_is_compiled_once_and_a_copy_of_it_on_its_own() -> None:
    dialect = asyncpg_dialect()
    statement = select(Post).where(Post.id == 1)
    first = reader.prepare(statement, dialect)
    assert reader.prepare(statement, dialect) is first
    copy = statement.limit(5)  # a generative copy carries the statement's attributes
    own = reader.prepare(copy, dialect)
    assert own is not first and "LIMIT" in own.sql and "LIMIT" not in first.sql
    assert reader.prepare(statement, dialect) is first
