"""A mutation's viewer, read once: remembered by the process, confirmed in the transaction.

A query takes its viewer from the process's viewer cache (``schema.auth.viewer_cache``). A
mutation must not write on a role or an account state that a notification in flight is about
to take away, so its viewer's row is read in its own transaction. Reading it alone costs a
statement, and the first thing nearly every mutation reads is the row it changes (the post a
comment goes on, the post an author edits): so the two come in one statement.

- ``authenticate_mutation`` (the ``Authentication`` extension, for a mutation): the viewer
  the cache remembers, marked ``Context.viewer_pending`` (no statement); otherwise the row is
  read as for any request (``schema.auth.viewer.authenticate``, in the transaction) and the
  cache is fed from it.
- ``with_viewer`` adds the viewer's ``users`` row to the mutation's first statement (a join
  on the viewer's id, ``editable.load_for_write``) while ``Context.viewer_pending``, and
  ``settle`` checks it the way ``authenticate`` does (the account exists and is active)
  and against the remembered role. A role that changed meanwhile makes the statement run
  again with the viewer's own visibility; an account that went raises
  ``AuthenticationFailed``.
- ``confirm``: the transaction boundary's last check before COMMIT, for a mutation that read
  no row first (``createPost``): the viewer's row is read then, in the transaction. A role
  that changed under the operation rolls it back (``TRANSACTION_CONFLICT``, retryable).

The viewer's row, read either way, is kept (``Context.viewer_row``) and serves the payload's
``author`` fields without another statement (``keep_row``).

What the row must say for the viewer to stand is ``authenticate``'s rule for the account
(exists, active, its role), written again in ``_checked``: a change to that rule belongs in
both places. The token's session and the password's change time are the cache's to check
(``ViewerCache.get``), as for queries.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import aliased

from db import models
from schema.auth.tokens import token_claims
from schema.auth.viewer import Viewer, authenticate
from schema.context import Context
from schema.errors import AuthenticationFailed, TransactionConflict
from schema.reads import fetch

#: The viewer's row beside the target's (an alias: the target may be a user too).
_VIEWER = aliased(models.User, name="viewer")
#: The parameter ``with_viewer`` joins the viewer's row by.
VIEWER_ROW = "inkwell_viewer_row"


async def authenticate_mutation(ctx: Context, token: str | None) -> Viewer | None:
    """The viewer of a mutation operation with bearer ``token`` (``None``: anonymous).

    When the process's viewer cache remembers the account with the token's session, and no
    password change since the token was issued, that viewer, with ``ctx.viewer_pending`` set:
    the operation's transaction has yet to read its row (``settle``, ``confirm``). Otherwise
    ``authenticate`` reads the row (in the transaction), and the cache remembers the viewer
    for the next mutation or query. Raises ``AuthenticationFailed`` as ``authenticate`` does.
    A session signed out or a password changed on another process is refused once its
    notification arrives (``schema.auth.viewer_cache``), as for a query; the row read in the
    transaction confirms what a write depends on: the account's existence, status and role.
    """
    if token is None:
        return None
    cache = ctx.viewers
    if cache is not None:
        claims = token_claims(ctx.settings, token)
        ctx.subject = claims.user_id
        # The token's session seen signed in, and no password change after it was issued.
        remembered = cache.get(claims.user_id, claims.session_id, claims.issued_at)
        if remembered is not None:
            ctx.viewer_pending = True
            return remembered
    viewer = await authenticate(ctx, token)  # which fills the cache
    if viewer is not None:
        ctx.viewer_row = ctx.loaders.rows.get((models.User, viewer.id))
    return viewer


def with_viewer(statement: Select[Any]) -> Select[Any]:
    """``statement`` with the viewer's ``users`` row as its last column, joined by the
    viewer's id, the ``VIEWER_ROW`` parameter (``params``): an inner join, so no row comes
    back when the account is gone."""
    return statement.add_columns(_VIEWER).join(_VIEWER, _VIEWER.id == bindparam(VIEWER_ROW))


def params(ctx: Context) -> dict[str, int]:
    """The ``VIEWER_ROW`` parameter of a statement made by ``with_viewer``."""
    assert ctx.viewer is not None
    return {VIEWER_ROW: ctx.viewer.id}


async def settle(ctx: Context, row: models.User | None) -> bool:
    """Confirm the pending viewer from ``row``, the viewer's ``users`` row that
    ``with_viewer`` added to a statement run with ``params`` (``None`` when the statement
    found no row: the row is then read alone). Returns ``True`` when the account's role is
    no longer the one remembered: ``ctx.viewer`` is the row's now, and the statement must
    run again, as what it could see depended on the role. Raises ``AuthenticationFailed``
    for an account that is gone or deactivated. Nothing to do (``False``) unless
    ``ctx.viewer_pending``."""
    if not ctx.viewer_pending or ctx.viewer is None:
        return False
    remembered = ctx.viewer
    if row is None:
        viewer = await _read(ctx)
    else:
        ctx.viewer_pending = False
        viewer = _checked(ctx, row)
        ctx.viewer_row = row
    if viewer == remembered:
        return False
    ctx.viewer = viewer
    return True


async def confirm(ctx: Context) -> None:
    """Read the pending viewer's row in the transaction, if no statement has yet (called just
    before COMMIT). Raises ``AuthenticationFailed`` for an account gone or deactivated, and
    ``TransactionConflict`` when its role changed under the operation: what the operation did
    was decided on the old one, so it rolls back and may be retried."""
    if not ctx.viewer_pending or ctx.viewer is None:
        return
    remembered = ctx.viewer
    if await _read(ctx) != remembered:
        raise TransactionConflict()


def keep_row(ctx: Context) -> None:
    """Let the viewer's row, read in this transaction, serve by-id reads of it (a payload's
    ``author``) again after the DataLoaders were cleared (``Loaders.rows``)."""
    row = ctx.viewer_row
    if row is not None:
        ctx.loaders.rows[models.User, row.id] = row


async def _read(ctx: Context) -> Viewer:
    """The pending viewer's ``users`` row read alone, in the transaction (one statement), and
    checked as ``_checked`` does. Not ``authenticate``: the token's session and password
    change were the cache's to check, and the operation may itself have changed them since
    (``changePassword``, ``signOut``), which must not refuse its own commit."""
    ctx.viewer_pending = False
    assert ctx.viewer is not None
    found = await fetch.rows(ctx, _row_statement(), {VIEWER_ROW: ctx.viewer.id})
    if not found:
        if ctx.viewers is not None:  # the notification is on its way: do not wait for it
            ctx.viewers.forget({ctx.viewer.id})
        raise AuthenticationFailed("The account of this access token no longer exists.")
    row = found[0][0]
    ctx.viewer_row = row
    return _checked(ctx, row)


@cache
def _row_statement() -> Select[Any]:
    """The viewer's ``users`` row by id, the ``VIEWER_ROW`` parameter (built once)."""
    return select(models.User).where(models.User.id == bindparam(VIEWER_ROW))


def _checked(ctx: Context, row: models.User) -> Viewer:
    """``authenticate``'s rule for the row of a signed-in account (the same messages): the
    viewer, with the row's role and the token's session."""
    assert ctx.viewer is not None
    if not row.is_active:
        if ctx.viewers is not None:  # the notification is on its way: do not wait for it
            ctx.viewers.forget({row.id})
        raise AuthenticationFailed("The account of this access token is deactivated.")
    viewer = replace(ctx.viewer, role=row.role)
    _forget_if_changed(ctx, viewer)
    return viewer


def _forget_if_changed(ctx: Context, viewer: Viewer) -> None:
    # The cache remembered another role: a notification is on its way; do not wait for it.
    if viewer != ctx.viewer and ctx.viewers is not None:
        ctx.viewers.forget({viewer.id})
