"""Deterministic, realistic demo data, loaded with Core bulk inserts.

The same ``seed`` and sizes always produce the same rows, so benchmarks and bug reports are
reproducible. Rows are built in chunks and sent as executemany INSERTs (SQLAlchemy's
"insertmanyvalues" on PostgreSQL: ~1,000 rows per statement), with explicit ids, so the ORM's
per-object bookkeeping never runs. Source: SQLAlchemy docs, "ORM Bulk INSERT Statements" and
"Insert Many Values Behavior for INSERT statements".
"""

from __future__ import annotations

import hashlib
import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher, low_level
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.models import Comment, Post, Tag, User, post_tags
from db.seed_text import FIRST_NAMES, LAST_NAMES, TOPICS, TextMaker

CHUNK_ROWS = 20_000
#: Every seeded account signs in with this password (demo data: one hash, computed once per
#: seed run, is shared by all users). User 1 is an active admin with ``ADMIN_EMAIL``.
DEMO_PASSWORD = "inkwell-demo"
ADMIN_EMAIL = "admin@example.com"
#: Demo data spans this many days before ``EPOCH``; fixed, so a seed is reproducible.
SPAN_DAYS = 730
EPOCH = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SeedSize:
    """How much demo data to make. Every field must be >= 0 (``tags_per_post <= tags``)."""

    users: int = 200
    posts_per_user: int = 10
    comments_per_post: int = 5
    tags: int = 40
    tags_per_post: int = 3
    seed: int = 42

    def __post_init__(self) -> None:
        for name in ("users", "posts_per_user", "comments_per_post", "tags", "tags_per_post"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.tags_per_post > self.tags:
            raise ValueError("tags_per_post must not exceed tags")


@dataclass(frozen=True, slots=True)
class SeedReport:
    """Rows inserted per table, and the wall-clock seconds it took."""

    users: int
    posts: int
    comments: int
    tags: int
    post_tags: int
    seconds: float


class DatabaseNotEmpty(RuntimeError):
    """Raised by ``seed`` when users exist and ``replace`` was not asked for."""


async def is_empty(engine: AsyncEngine) -> bool:
    """True when the users table has no rows."""
    async with engine.connect() as conn:
        return (await conn.scalar(select(func.count()).select_from(User))) == 0


async def seed(
    engine: AsyncEngine, size: SeedSize, *, replace: bool = False, demo_password: bool = True
) -> SeedReport:
    """Load demo data of ``size`` in one transaction. With ``demo_password`` every account
    signs in with ``DEMO_PASSWORD``; without it, with a random password nobody knows.

    Raises ``DatabaseNotEmpty`` if the database has users, unless ``replace`` is true, in which
    case every existing row is deleted first (in the same transaction).
    """
    started = time.perf_counter()
    rng = random.Random(size.seed)
    words = TextMaker(rng)
    async with engine.begin() as conn:
        if await conn.scalar(select(func.count()).select_from(User)):
            if not replace:
                raise DatabaseNotEmpty("the database already has data; pass --replace to wipe it")
            await _wipe(conn)
        n_posts = size.users * size.posts_per_user
        password_hash = (
            _demo_password_hash(size.seed)
            if demo_password
            else PasswordHasher().hash(secrets.token_urlsafe(32))
        )
        await _insert(conn, User, _users(rng, words, size.users, password_hash))
        await _insert(conn, Tag, _tags(size.tags))
        post_times: list[datetime] = []
        await _insert(conn, Post, _posts(rng, words, size, post_times))
        await _insert(conn, post_tags, _post_tags(rng, size, n_posts))
        await _insert(conn, Comment, _comments(rng, words, size, post_times))
        if conn.dialect.name == "postgresql":
            # Explicit ids leave the identity sequences behind; move them past the max id.
            for table in ("users", "tags", "posts", "comments"):
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                    )
                )
    return SeedReport(
        users=size.users,
        posts=n_posts,
        comments=n_posts * size.comments_per_post,
        tags=size.tags,
        post_tags=n_posts * size.tags_per_post,
        seconds=time.perf_counter() - started,
    )


#: Every table the demo data fills or a session writes, children before their parents.
_WIPED = (
    "post_tags",
    "comments",
    "posts",
    "tags",
    "rotated_refresh_tokens",
    "sign_in_sessions",
    "users",
)


async def _wipe(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"TRUNCATE {', '.join(_WIPED)} RESTART IDENTITY"))
        return
    for table in _WIPED:
        await conn.execute(text(f"DELETE FROM {table}"))


async def _insert(conn: AsyncConnection, target: Any, rows: Iterator[dict[str, Any]]) -> None:
    table = getattr(target, "__table__", target)
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK_ROWS:
            await conn.execute(insert(table), chunk)
            chunk = []
    if chunk:
        await conn.execute(insert(table), chunk)


def _moment(rng: random.Random, after: datetime | None = None) -> datetime:
    """A random time in the demo span (after ``after``, when given)."""
    start = after or EPOCH - timedelta(days=SPAN_DAYS)
    room = max((EPOCH - start).total_seconds(), 1.0)
    return start + timedelta(seconds=rng.random() * room, microseconds=rng.randrange(1_000_000))


def _demo_password_hash(seed: int) -> str:
    """An Argon2id hash of ``DEMO_PASSWORD`` with the application's parameters and a salt
    derived from ``seed``: the same seed gives the same rows, hashes included."""
    params = PasswordHasher()
    # A salt of the hasher's own length: otherwise every first sign-in would see different
    # parameters and store a fresh hash (check_needs_rehash compares the salt length too).
    salt = hashlib.sha256(f"inkwell-seed-{seed}".encode()).digest()[: params.salt_len]
    return low_level.hash_secret(
        DEMO_PASSWORD.encode(),
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_cost,
        parallelism=params.parallelism,
        hash_len=params.hash_len,
        type=params.type,
    ).decode()


def _users(
    rng: random.Random, words: TextMaker, count: int, password_hash: str
) -> Iterator[dict[str, Any]]:
    for user_id in range(1, count + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created = _moment(rng)
        email = f"{first}.{last}.{user_id}@example.com".lower()
        admin, active = rng.random() < 0.02, rng.random() < 0.95
        yield {
            "id": user_id,
            "email": ADMIN_EMAIL if user_id == 1 else email,
            "name": f"{first} {last}",
            "bio": words.sentences(rng.randint(1, 3)) if rng.random() < 0.6 else None,
            "role": "admin" if user_id == 1 or admin else "member",
            "is_active": user_id == 1 or active,
            "password_hash": password_hash,
            "created_at": created,
            "updated_at": created,
            "version": 1,
        }


def _tags(count: int) -> Iterator[dict[str, Any]]:
    for index in range(count):
        base = TOPICS[index % len(TOPICS)]
        round_ = index // len(TOPICS)
        yield {"id": index + 1, "name": base if round_ == 0 else f"{base}-{round_ + 1}"}


def _posts(
    rng: random.Random, words: TextMaker, size: SeedSize, times: list[datetime]
) -> Iterator[dict[str, Any]]:
    """Each user writes ``posts_per_user`` posts; ~70 % are published."""
    authors = [u for u in range(1, size.users + 1) for _ in range(size.posts_per_user)]
    rng.shuffle(authors)
    for post_id, author in enumerate(authors, start=1):
        created = _moment(rng)
        times.append(created)
        published = rng.random() < 0.7
        yield {
            "id": post_id,
            "author_id": author,
            "title": words.title(),
            "content": words.paragraphs(rng.randint(1, 3)),
            "status": "published" if published else "draft",
            "published_at": _moment(rng, created) if published else None,
            "created_at": created,
            "updated_at": created,
            "version": 1,
        }


def _post_tags(rng: random.Random, size: SeedSize, n_posts: int) -> Iterator[dict[str, Any]]:
    tag_ids = range(1, size.tags + 1)
    for post_id in range(1, n_posts + 1):
        for tag_id in rng.sample(tag_ids, size.tags_per_post):
            yield {"post_id": post_id, "tag_id": tag_id}


def _comments(
    rng: random.Random, words: TextMaker, size: SeedSize, post_times: list[datetime]
) -> Iterator[dict[str, Any]]:
    comment_id = 0
    for post_id, post_created in enumerate(post_times, start=1):
        for _ in range(size.comments_per_post):
            comment_id += 1
            created = _moment(rng, post_created)
            yield {
                "id": comment_id,
                "post_id": post_id,
                "author_id": rng.randint(1, size.users),
                "body": words.sentences(rng.randint(1, 3)),
                "created_at": created,
                "updated_at": created,
                "version": 1,
            }
