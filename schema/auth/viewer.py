"""The viewer: who a request is from, taken from its ``Authorization: Bearer`` header."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ARRAY, BigInteger, ColumnElement, Select, and_, any_, bindparam, select

from db import models
from schema.auth.tokens import Claims, token_claims
from schema.errors import AuthenticationFailed
from schema.reads import fetch
from schema.reads.batch import load_batch
from schema.reads.loaders import SharedLoader

if TYPE_CHECKING:
    from schema.context import Context

ADMIN = "admin"
SIGNED_OUT = "This session has ended (signed out, or ended by a password change); sign in again."
PASSWORD_CHANGED = (
    "The account's password changed after this access token was issued; sign in again."
)


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of one operation: the row's id and role when the operation began,
    and the sign-in session of its token (``None`` for a token issued before sessions)."""

    id: int
    role: str
    session_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    def may_edit(self, owner_id: int) -> bool:
        """Members write their own content; admins anyone's."""
        return self.is_admin or owner_id == self.id


def bearer_token(authorization: object) -> str | None:
    """The token of an ``Authorization`` value ``Bearer <token>`` (the HTTP header, or a
    WebSocket's ``connection_init`` ``authorization``); ``None`` when there is none.

    Raises ``AuthenticationFailed`` for another scheme, an empty token or a value that is not
    a string, so a client's mistake is reported instead of silently treated as anonymous.
    Source: RFC 6750 §2.1 (the scheme is case-insensitive).
    """
    if authorization is None:
        return None
    if not isinstance(authorization, str):
        raise AuthenticationFailed("The authorization must be the string `Bearer <token>`.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("The Authorization header must be `Bearer <token>`.")
    return token.strip()


async def authenticate(ctx: Context, token: str | None) -> Viewer | None:
    """The viewer ``token`` names (``None`` for no token), checked against the database.

    For a query, the process's viewer cache answers when it remembers the account and the
    token's session (``ctx.viewers``: any change to them is forgotten at once, see
    ``schema.auth.viewer_cache``). Otherwise, and always for a mutation (which asks the cache
    itself, ``schema.writes.viewer_check``, and reads the account in its own transaction) or
    a subscription's event, one statement, which fills the cache: the user's row
    by primary key with its password change and, outer-joined, the token's session if it is
    still signed in (``_accounts``); the row then also serves later ``author`` fields
    (``Loaders.rows``). Raises ``AuthenticationFailed`` for an invalid or expired token, for
    an account that was deleted or deactivated (its tokens stop working at once), for a
    session that was signed out, and for a token issued before the password last changed.
    """
    if token is None:
        return None
    claims = token_claims(ctx.settings, token)
    user_id = ctx.subject = claims.user_id
    # An operation's own read fills the cache (a mutation's too: it reads in its transaction
    # what a query would read); an event's shared read may have begun before the generation
    # is taken here. Only a query is answered by it: a mutation asks the cache itself first
    # (``schema.writes.viewer_check``), then confirms the row in its transaction.
    cache = ctx.viewers if not ctx.shared else None
    generation = 0
    if cache is not None:
        if ctx.read_only:
            remembered = cache.get(user_id, claims.session_id, claims.issued_at)
            if remembered is not None:
                return remembered
        generation = cache.generation
    accounts = _accounts(ctx)
    key = (user_id, claims.session_id)
    if ctx.shared:
        # The results made for one event in a shared unit of work share the lookup too.
        found: _Account | None = await accounts.load(key)
    else:
        # The batch function itself (no future or dispatch task for one key); the row then
        # serves every by-id read of this user, whichever columns it selects.
        (found,) = await load_batch(accounts, [key])
        if found is not None:
            ctx.loaders.rows[models.User, user_id] = found[0]
    role, changed_at = _check(claims, found)
    viewer = Viewer(user_id, role, claims.session_id)
    if cache is not None:
        # Read on a replica: kept only if it had replayed whatever was forgotten since.
        cache.put(viewer, generation, ctx.read_as_of, changed_at)
    return viewer


#: An account as its token's check needs it: the user's row, when its password last changed,
#: and whether the token's session is still signed in (always true without a session).
_Account = tuple[Any, datetime | None, bool]


def _check(claims: Claims, found: _Account | None) -> tuple[str, float | None]:
    """Refuse ``claims`` for the account ``found`` (``AuthenticationFailed``); else its role
    and when its password last changed (a Unix time, ``None``: never)."""
    if found is None:
        raise AuthenticationFailed("The account of this access token no longer exists.")
    row, changed_at, live = found
    if not row.is_active:
        raise AuthenticationFailed("The account of this access token is deactivated.")
    if not live:
        raise AuthenticationFailed(SIGNED_OUT)
    if changed_at is None:
        return row.role, None
    # Both sides come from the server's clock with microseconds (``issue_token``), and the
    # token ``changePassword`` returns is issued at exactly ``password_changed_at``.
    changed = changed_at.timestamp()
    if claims.issued_at < changed:
        raise AuthenticationFailed(PASSWORD_CHANGED)
    return row.role, changed


_USERS, _SESSIONS = "inkwell_users", "inkwell_sessions"
_BIGINT_ARRAY = ARRAY(BigInteger())
#: The accounts statement per dialect (built once: see ``loaders.shared_statement``).
_statements: dict[bool, Select[*tuple[Any, ...]]] = {}


def _in(is_sqlite: bool, column: Any, name: str) -> ColumnElement[bool]:
    # As ``fetch.in_ids``, with a parameter of its own: one array on PostgreSQL.
    if is_sqlite:
        return column.in_(bindparam(name, expanding=True))
    return column == any_(bindparam(name, type_=_BIGINT_ARRAY))


def _statement(is_sqlite: bool) -> Select[*tuple[Any, ...]]:
    """Users by id with their password change and, joined, those of the given sessions that
    are theirs and still signed in (none: NULL)."""
    found = _statements.get(is_sqlite)
    if found is not None:
        return found
    user, session = models.User, models.SignInSession
    statement: Select[*tuple[Any, ...]] = (
        select(user, user.password_changed_at, session.id)
        .outerjoin(
            session,
            and_(
                session.user_id == user.id,
                _in(is_sqlite, session.id, _SESSIONS),
                session.revoked_at.is_(None),
            ),
        )
        .where(_in(is_sqlite, user.id, _USERS))
    )
    _statements[is_sqlite] = statement
    return statement


def _accounts(ctx: Context) -> SharedLoader:
    """The accounts of (user id, session id or ``None``) keys: one statement per batch.

    A session's expiry needs no check here: its access tokens never outlive it
    (``issue_token``'s ``not_after``)."""

    async def load(keys: list[tuple[int, int | None]]) -> list[_Account | None]:
        params = {
            _USERS: sorted({user for user, _ in keys}),
            _SESSIONS: sorted({session for _, session in keys if session is not None}),
        }
        rows = await fetch.rows(ctx, _statement(ctx.settings.is_sqlite), params)
        users: dict[int, tuple[Any, datetime | None]] = {}
        live: set[tuple[int, int]] = set()
        for row, changed_at, session_id in rows:
            users[row.id] = (row, changed_at)
            if session_id is not None:
                live.add((row.id, session_id))
        found: list[_Account | None] = []
        for user_id, session_id in keys:
            user = users.get(user_id)
            signed_in = session_id is None or (user_id, session_id) in live
            found.append(None if user is None else (user[0], user[1], signed_in))
        return found

    return ctx.loaders.get("viewer_accounts", load)
