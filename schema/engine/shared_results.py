"""One execution per event for every subscriber who would get the same result.

graphql-core executes a subscription's selection once per event per subscriber. Subscribers
with one viewer already read an event in one shared unit of work (``schema.live.stream``'s
``SharedRead``); among them, those who sent the same operation (the same parsed document:
the parse cache hands out one per text) with the same variables resolve the event to the
same row, read through the same DataLoaders, and would get equal results. So the first of
them executes, and the others wait for its result and get its data, each in an
``ExecutionResult`` of its own (Strawberry adds per-subscriber ``extensions`` to it). The
work per subscriber left is the send. A result with errors is not shared: each subscriber
then executes on its own, so its errors are its own objects (masking rewrites them).
Source: Hasura docs, "Subscription execution" (one query per group of subscribers with equal
session variables and query); graphql-core ``map_source_to_response_event`` (the per-event
executor).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any

from graphql import ExecutionResult

#: Runs the operation for this subscriber: graphql-core's own ``execute_operation``.
type Execute = Callable[[], Any]


def share(
    results: dict[Hashable, Any],
    operation: object,
    variables: Hashable,
    execute: Execute,
    is_awaitable: Callable[[Any], bool],
) -> Any:
    """The result of ``execute()`` for this subscriber: the one computed for ``operation``
    (the same object: AST nodes hash over their whole tree, so it is looked up by ``id``)
    and ``variables`` by an earlier subscriber of the event, or computed now and kept in
    ``results`` for the later ones. Returns what ``execute`` returns (an ``ExecutionResult``
    or an awaitable of one)."""
    key = (id(operation), variables)
    entry = results.get(key)
    if entry is not None and entry[0] is operation:
        return _copy(entry[1], execute, is_awaitable)
    future: asyncio.Future[ExecutionResult] = asyncio.get_running_loop().create_future()
    results[key] = (operation, future)  # the operation kept with it: its id stays its own
    result = execute()
    if not is_awaitable(result):
        _settle(future, result)
        return result

    async def first() -> ExecutionResult:
        try:
            done: ExecutionResult = await result
        except BaseException:
            future.cancel()  # the others execute on their own
            raise
        _settle(future, done)
        return done

    return first()


def _settle(future: asyncio.Future[ExecutionResult], result: ExecutionResult) -> None:
    if not future.done():
        future.set_result(result)


async def _copy(
    future: asyncio.Future[ExecutionResult], execute: Execute, is_awaitable: Callable[[Any], bool]
) -> ExecutionResult:
    try:
        # Shielded: this subscriber leaving must not cancel the others' result.
        done = await asyncio.shield(future)
    except asyncio.CancelledError:
        if not future.cancelled():
            raise  # this subscriber was cancelled
        done = None
    if done is None or done.errors:
        own = execute()
        result: ExecutionResult = await own if is_awaitable(own) else own
        return result
    return ExecutionResult(data=done.data, errors=None)


def variables_key(variables: dict[str, Any] | None) -> Hashable | None:
    """A hashable form of an operation's coerced variables, or ``None`` when a value is not
    hashable (a list, an input object): then the result is not shared."""
    if not variables:
        return ()
    try:
        key = tuple(sorted(variables.items()))
        hash(key)
    except TypeError:
        return None
    return key
