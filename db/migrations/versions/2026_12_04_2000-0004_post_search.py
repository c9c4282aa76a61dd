"""Full-text search over posts: each database's own engine (issue 21).

PostgreSQL: ``posts.search_vector``, a STORED generated ``tsvector`` (the title weighted A,
the content B, English stemming), and a GIN index on it. SQLite: ``posts_fts``, an FTS5
external-content table over ``posts`` (title, content; the porter stemmer over unicode61),
kept in step by triggers, and filled from the rows already there.

Neither is mapped on the models: the database maintains them and only the search SQL
(``schema.reads.search``) reads them; ``db.migrate.SEARCH_OBJECTS`` names them so comparing
the models with the database leaves them out.

Sources: PostgreSQL docs, "Text Search" (12.2.2 "Creating Indexes", 12.3 "Controlling Text
Search"), "Generated Columns"; SQLite docs, "FTS5" (4.4.3 "External Content Tables", with
its trigger recipe; 4.3.1 "Porter Tokenizer"; 'rebuild').

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRESQL_UP = (
    """
    ALTER TABLE posts ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, title), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(content, '')), 'B')
    ) STORED
    """,
    "CREATE INDEX ix_posts_search_vector ON posts USING gin (search_vector)",
)
POSTGRESQL_DOWN = (
    "DROP INDEX ix_posts_search_vector",
    "ALTER TABLE posts DROP COLUMN search_vector",
)

# The FTS5 documentation's triggers for an external-content table: a row's old terms are
# removed with the special 'delete' command (which needs the old values), new ones inserted.
SQLITE_UP = (
    """
    CREATE VIRTUAL TABLE posts_fts USING fts5(
        title, content, content='posts', content_rowid='id', tokenize='porter unicode61'
    )
    """,
    """
    CREATE TRIGGER posts_fts_insert AFTER INSERT ON posts BEGIN
        INSERT INTO posts_fts (rowid, title, content) VALUES (new.id, new.title, new.content);
    END
    """,
    """
    CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN
        INSERT INTO posts_fts (posts_fts, rowid, title, content)
        VALUES ('delete', old.id, old.title, old.content);
    END
    """,
    # Only a change to what is indexed re-indexes the row (publishing, a new version: no).
    """
    CREATE TRIGGER posts_fts_update AFTER UPDATE OF title, content ON posts BEGIN
        INSERT INTO posts_fts (posts_fts, rowid, title, content)
        VALUES ('delete', old.id, old.title, old.content);
        INSERT INTO posts_fts (rowid, title, content) VALUES (new.id, new.title, new.content);
    END
    """,
    "INSERT INTO posts_fts (posts_fts) VALUES ('rebuild')",
)
SQLITE_DOWN = (
    "DROP TRIGGER posts_fts_update",
    "DROP TRIGGER posts_fts_delete",
    "DROP TRIGGER posts_fts_insert",
    "DROP TABLE posts_fts",
)


def upgrade() -> None:
    is_sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_UP if is_sqlite else POSTGRESQL_UP:
        op.execute(statement)


def downgrade() -> None:
    is_sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DOWN if is_sqlite else POSTGRESQL_DOWN:
        op.execute(statement)
