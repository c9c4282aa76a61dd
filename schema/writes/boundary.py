"""One transaction per mutation operation: commit if every field succeeded, else roll back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from graphql import ExecutionResult, GraphQLError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError
from strawberry.extensions import FieldExtension, SchemaExtension
from strawberry.types import Info
from strawberry.types.graphql import OperationType

from db.errors import is_transaction_conflict
from db.replicas import commit_position, format_lsn
from schema.completion import shielded
from schema.context import Context
from schema.errors import TransactionConflict
from schema.live.events import rows_changed
from schema.writes import changes, viewer_check
from schema.writes.flush import written
from schema.writes.results import MutationError, rolled_back
from schema.writes.transaction import Outcome, Transaction
from schema.writes.withdrawn import rolled_back_value

logger = logging.getLogger("inkwell.transaction")


class TransactionBoundary(SchemaExtension):
    """Commits a mutation operation's unit of work once, after its last field, or rolls it
    all back.

    It commits only when no field raised and no field returned a typed error (a
    ``MutationError`` member of its result union, recorded by ``AtomicMutation``); otherwise
    nothing the operation did is kept. The response says which happened in
    ``extensions.transaction`` ("committed" or "rolled_back"). A failed commit leaves
    ``data`` null and one error: ``TRANSACTION_CONFLICT`` (retryable) for a serialization
    failure or deadlock, otherwise an unexpected error, masked, with its cause logged.
    Queries never commit: ``UnitOfWork`` closes (and so rolls back) their session.
    The fields' events (``Transaction.events``) go to the broker with the commit (``stage``
    just before it, ``committed`` after it) and nowhere on rollback, so no subscriber hears of
    a change that was not kept. With the response cache on, so does a ``ROWS_CHANGED`` event
    naming the tables the transaction wrote (``schema.writes.changes``), and the cache hears
    of the commit after it (the session no longer held) and before the response is sent
    (``ResponseCache.committed``; a failure there is logged, never reported as a rollback).
    With read replicas, a commit's WAL position goes in ``extensions.readAfter`` (``read_after``).
    Source: Hasura docs, "Multiple mutations in a request" (one transaction, all or nothing).
    """

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if (
            not isinstance(context, Context)
            or self.execution_context.operation_type is not OperationType.MUTATION
        ):
            yield
            return
        transaction = context.transaction = Transaction()
        try:
            yield
        except BaseException:
            # Cancelled (the client went away) or failed outside the resolvers: the session
            # is closed by UnitOfWork, which rolls back; record it and let it propagate.
            transaction.outcome = Outcome.ROLLED_BACK
            raise
        result = self.execution_context.result
        if transaction.failed or result is None or result.errors:
            await context.rollback()
            transaction.outcome = Outcome.ROLLED_BACK
            if isinstance(result, ExecutionResult):
                self._withdraw(result, transaction.succeeded)
            return
        events = transaction.outbox()
        # With the response cache on, every commit announces the tables it wrote too.
        cache = context.response_cache if context.broker is not None else None
        broker = context.broker if events or cache is not None else None
        #: The tables the commit wrote and its position, for the response cache.
        changed: list[tuple[frozenset[str], int]] = []
        try:
            # A viewer taken from the cache whose row no statement has read yet: read now.
            await viewer_check.confirm(context)
            if broker is not None:
                # One shielded piece of work: the outbox rows (and, on PostgreSQL, the NOTIFY)
                # inside the transaction, COMMIT, then the in-process hand-over, so a client
                # leaving mid-commit cannot keep a committed change from being announced.
                async def commit_and_announce(session: Any) -> None:
                    tables = await _tables_written(session) if cache is not None else None
                    staged = [*events, rows_changed(tables)] if tables else events
                    written = await broker.stage(session, staged) if staged else []
                    await session.commit()
                    broker.committed(written)
                    if tables:
                        changed.append((tables, written[-1].event_id))

                await context.run(commit_and_announce)
            else:
                await context.commit()
        except Exception as exc:
            transaction.outcome = Outcome.ROLLED_BACK
            logger.warning("commit failed, the operation was rolled back: %r", exc)
            error: Exception = TransactionConflict() if is_transaction_conflict(exc) else exc
            # Nothing was kept, so no payload may suggest otherwise.
            result.data = None
            result.errors = [GraphQLError(str(error), original_error=error)]
            return
        finally:
            # On every path, a cancellation included: the COMMIT may have been applied.
            _forget_accounts(context, transaction)
        transaction.outcome = Outcome.COMMITTED
        if cache is not None and changed:
            # Before the response: the next read anywhere sees the change. Out of the commit's
            # try (it is committed, whatever happens here) and of its session's hold.
            await _announce(cache, *changed[0])
        if context.replicas is not None:
            await read_after(context, transaction)

    def _withdraw(self, result: ExecutionResult, keys: list[str]) -> None:
        """Replace the payloads of fields that succeeded before the operation failed with
        ``RolledBack`` (``schema.writes.withdrawn``): their ids, timestamps or tokens
        name changes that were never kept (and, on SQLite, ids that a later row may get)."""
        if result.data is None:
            return
        ctx = self.execution_context
        assert ctx.graphql_document is not None  # it executed, so it parsed
        message = rolled_back(withdrawn=True).message
        for key in keys:
            if result.data.get(key) is not None:
                result.data[key] = rolled_back_value(
                    ctx.graphql_document, ctx.operation_name, ctx.variables, key, message
                )

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        transaction = context.transaction if isinstance(context, Context) else None
        if transaction is None or transaction.outcome is None:
            return {}
        if transaction.position is not None:
            return {"transaction": transaction.outcome.value, "readAfter": transaction.position}
        return {"transaction": transaction.outcome.value}


async def read_after(context: Context, transaction: Transaction) -> None:
    """Read the primary's WAL position after the commit (``db.replicas.commit_position``)
    into ``transaction.position``, for the client to send back (``Inkwell-Read-After``), and
    pin the viewer's next queries in this process to where it is replayed. A position that
    cannot be read is logged, and the response goes without one (the commit stands)."""
    assert context.replicas is not None
    try:
        position = await context.run(commit_position)
    except Exception as exc:
        logger.warning("the commit's WAL position could not be read: %r", exc)
        return
    transaction.position = format_lsn(position)
    if context.viewer is not None:
        context.replicas.pin(context.viewer.id, position)


async def _announce(cache: Any, tables: frozenset[str], position: int) -> None:
    """Tell the response cache (a ``ResponseCache``) of a commit at ``position`` that wrote
    ``tables`` (``ResponseCache.committed``), to completion even if the client has gone.
    Never raises: the commit stands whatever happens here; a failure is logged (other
    processes then learn of the commit from its event)."""
    try:
        await shielded(cache.committed(tables, position))
    except Exception as exc:
        logger.warning("the response cache was not told of a commit: %r", exc)


async def _tables_written(session: Any) -> frozenset[str]:
    # Flushed first: COMMIT would flush what is pending after the outbox rows are written.
    await session.flush()
    return changes.written(session)


def _forget_accounts(context: Context, transaction: Transaction) -> None:
    # Here, not only through the trigger's NOTIFY: this process's next request may not wait
    # for the notification to arrive.
    if transaction.accounts and context.viewers is not None:
        context.viewers.forget(transaction.accounts)


class AtomicMutation(FieldExtension):
    """Ties a mutation field to the operation's transaction.

    A field that returns a typed error (a ``MutationError``) or raises dooms the transaction
    (an error deeper in a payload does too: ``schema.engine.execution``); once it is doomed, later
    mutation fields do not run (they resolve to ``RolledBack``), and the payloads of earlier
    ones are withdrawn at the end (``TransactionBoundary``: ``RolledBack`` too), so no
    response reports work that was rolled back. A database error that means "retry"
    (serialization failure, deadlock, lock timeout) becomes ``TRANSACTION_CONFLICT`` here,
    for every statement a resolver runs. Between fields, the DataLoader caches are dropped:
    each field reads what the previous ones wrote.
    """

    def resolve(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        raise TypeError("mutation resolvers are async")

    async def resolve_async(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        context: Context = info.context
        transaction = context.transaction
        if transaction is None:  # not in a mutation operation: nothing to tie to
            return await next_(source, info, **kwargs)
        if transaction.failed:
            return rolled_back()
        written(context)  # each field reads what the ones before it wrote
        try:
            result = await next_(source, info, **kwargs)
        except (DBAPIError, StaleDataError) as exc:
            transaction.fail()
            if isinstance(exc, StaleDataError) or is_transaction_conflict(exc):
                raise TransactionConflict() from exc
            raise
        except BaseException:
            transaction.fail()
            raise
        if isinstance(result, MutationError):
            transaction.fail()
        else:
            transaction.succeeded.append(str(info.path.key))
        return result
