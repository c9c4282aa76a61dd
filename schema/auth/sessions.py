"""Sign-in sessions: refresh tokens, their rotation and its reuse, and signing out.

Every function takes the ``AsyncSession`` of the caller's transaction (a mutation's, through
``Context.run``; a command's) and the time of the change, and commits nothing: what they do
is kept or rolled back with the rest of the transaction.

A refresh token is 32 random bytes (``secrets.token_urlsafe``, 256 bits), opaque to the
client. The database keeps only its SHA-256: a stolen copy of the table gives no usable
token, and the token is found by an index lookup on its hash. A slow password hash (Argon2)
protects guessable secrets; a 256-bit random token cannot be guessed, so a fast hash loses
nothing, and a salted hash could not be looked up.

Rotation: each refresh token is exchanged once (``rotate``) for a new one; the one exchanged
is kept (``rotated_refresh_tokens``), so if it is presented again, two parties hold the
session's tokens (one stole them) and the whole session ends.
Source: OAuth 2.0 Security Best Current Practice (RFC 9700) §4.14.2 (refresh token
rotation); OWASP Session Management Cheat Sheet (session ids of at least 64 bits of entropy).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import models
from db.types import UTCDateTime
from settings import Settings

#: Random bytes per refresh token (``secrets.token_urlsafe``: 43 characters).
REFRESH_TOKEN_BYTES = 32
#: The GraphQL type name of a session (``User.sessions``' items): in their global IDs, which
#: ``signOut`` takes back.
SESSION_TYPE = "Session"


def hash_refresh_token(token: str) -> str:
    """The SHA-256 of ``token``, as 64 hex digits: what the database keeps (see the module's
    docstring for why a fast hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


def device_label(given: str | None, user_agent: str | None) -> str | None:
    """What a session is called in ``viewer { sessions }``: the client's own label, else its
    User-Agent, trimmed and cut to ``DEVICE_LABEL_MAX`` characters; ``None`` for neither."""
    label = (given if given is not None and given.strip() else user_agent) or ""
    return label.strip()[: models.DEVICE_LABEL_MAX] or None


@dataclass(frozen=True, slots=True)
class Issued:
    """A refresh token just issued: its session, the token itself (never stored) and when
    it expires (UTC)."""

    session_id: int
    refresh_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Reused:
    """A refresh token already exchanged was presented again: its session and user."""

    session_id: int
    user_id: int


def _new_token(settings: Settings, now: datetime) -> tuple[str, str, datetime]:
    token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    expires = now + timedelta(seconds=settings.refresh_token_ttl_seconds)
    return token, hash_refresh_token(token), expires


async def start(
    session: AsyncSession, settings: Settings, user_id: int, label: str | None, now: datetime
) -> Issued:
    """Start a session for ``user_id`` (signing in), and delete the user's sessions that
    have expired (two statements)."""
    table = models.SignInSession
    await session.execute(
        delete(table).where(table.user_id == user_id, table.expires_at <= now),
        execution_options={"synchronize_session": False},
    )
    token, digest, expires = _new_token(settings, now)
    inserted = await session.execute(
        insert(table)
        .values(
            user_id=user_id,
            token_hash=digest,
            device_label=label,
            created_at=now,
            last_used_at=now,
            expires_at=expires,
        )
        .returning(table.id)
    )
    return Issued(inserted.scalar_one(), token, expires)


async def rotate(
    session: AsyncSession, settings: Settings, token: str, now: datetime
) -> tuple[int, Issued] | Reused | None:
    """Exchange refresh ``token`` for a new one: ``(user id, the new token)``; ``Reused`` if
    it was exchanged before; ``None`` if it is unknown, expired or its session ended.

    The exchange is one conditional UPDATE on the token's hash, so of two requests with one
    token, one exchanges it; the other waits for its commit (the row lock; SQLite's one
    writer), finds it exchanged and is told ``Reused``, as a thief would be. Three statements
    when it succeeds (the exchange, the old hash kept, the session's hashes older than the
    token lifetime deleted), two otherwise.
    """
    table, rotated = models.SignInSession, models.RotatedRefreshToken
    old = hash_refresh_token(token)
    new_token, digest, expires = _new_token(settings, now)
    exchanged = (
        await session.execute(
            update(table)
            .where(table.token_hash == old, table.revoked_at.is_(None), table.expires_at > now)
            .values(token_hash=digest, last_used_at=now, expires_at=expires)
            .returning(table.id, table.user_id),
            execution_options={"synchronize_session": False},
        )
    ).first()
    if exchanged is None:
        reused = (
            await session.execute(
                select(rotated.session_id, table.user_id)
                .join(table, table.id == rotated.session_id)
                .where(rotated.token_hash == old)
            )
        ).first()
        return None if reused is None else Reused(reused[0], reused[1])
    session_id, user_id = exchanged
    await session.execute(
        insert(rotated).values(token_hash=old, session_id=session_id, rotated_at=now)
    )
    await _forget_expired(session, settings, session_id, now)
    return user_id, Issued(session_id, new_token, expires)


async def renew(
    session: AsyncSession, settings: Settings, session_id: int, now: datetime
) -> Issued | None:
    """Give live session ``session_id`` a new refresh token (its current one is kept as
    rotated: presented again, it ends the session); ``None`` if the session has ended."""
    table, rotated = models.SignInSession, models.RotatedRefreshToken
    live = (table.id == session_id, table.revoked_at.is_(None), table.expires_at > now)
    await session.execute(
        insert(rotated).from_select(
            ["token_hash", "session_id", "rotated_at"],
            select(table.token_hash, table.id, literal(now, UTCDateTime())).where(*live),
        )
    )
    token, digest, expires = _new_token(settings, now)
    changed = await session.execute(
        update(table).where(*live).values(token_hash=digest, last_used_at=now, expires_at=expires),
        execution_options={"synchronize_session": False},
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    await _forget_expired(session, settings, session_id, now)
    return Issued(session_id, token, expires)


async def _forget_expired(
    session: AsyncSession, settings: Settings, session_id: int, now: datetime
) -> None:
    # A token rotated longer ago than a token lives has expired: presented, it is refused
    # anyway, and the table stays as small as the tokens that could still be reused.
    rotated = models.RotatedRefreshToken
    cutoff = now - timedelta(seconds=settings.refresh_token_ttl_seconds)
    await session.execute(
        delete(rotated).where(rotated.session_id == session_id, rotated.rotated_at < cutoff),
        execution_options={"synchronize_session": False},
    )


async def end(
    session: AsyncSession,
    now: datetime,
    user_id: int,
    *,
    only: int | None = None,
    keep: int | None = None,
) -> int:
    """Sign out ``user_id``'s live sessions (only session ``only``; all but ``keep``): how
    many ended. Their refresh tokens are refused from now on, and their access tokens once
    the viewer caches hear of it (a trigger's NOTIFY; ``schema.auth.viewer_cache``)."""
    table = models.SignInSession
    where = [table.user_id == user_id, table.revoked_at.is_(None), table.expires_at > now]
    if only is not None:
        where.append(table.id == only)
    if keep is not None:
        where.append(table.id != keep)
    ended = await session.execute(
        update(table).where(*where).values(revoked_at=now),
        execution_options={"synchronize_session": False},
    )
    return int(ended.rowcount)  # type: ignore[attr-defined]


async def end_family(session: AsyncSession, now: datetime, session_id: int) -> None:
    """Sign out session ``session_id`` whoever's it is (a reused refresh token's)."""
    table = models.SignInSession
    await session.execute(
        update(table)
        .where(table.id == session_id, table.revoked_at.is_(None))
        .values(revoked_at=now),
        execution_options={"synchronize_session": False},
    )


async def set_password(
    session: AsyncSession, user_id: int, password_hash: str, now: datetime, old_hash: str | None
) -> bool:
    """Store ``password_hash`` as ``user_id``'s password, changed at ``now`` (access tokens
    issued before are refused from then on), if the stored hash is still ``old_hash`` (a
    concurrent change wins; ``None``: whatever it is). True if it was stored.

    A plain UPDATE, not a versioned one: the hash is not part of the profile a client edits
    with ``expectedVersion``, so it must not cause their next edit a ``VersionConflict``.
    """
    user = models.User
    where = [user.id == user_id]
    if old_hash is not None:
        where.append(user.password_hash == old_hash)
    changed = await session.execute(
        update(user).where(*where).values(password_hash=password_hash, password_changed_at=now),
        execution_options={"synchronize_session": False},
    )
    return int(changed.rowcount) == 1  # type: ignore[attr-defined]
