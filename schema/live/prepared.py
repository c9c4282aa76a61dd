"""Each event's result, made once per audience as soon as the event arrives.

graphql-core executes a subscription's selection once per event per subscriber, when the
subscriber gets to the event. Done that way, a subscriber's events are read one after the
other, each waiting on its statements and DataLoaders (about ten turns of the event loop), so
under load a subscriber falls behind even when it has nothing else to do. Here the work moves
to the event's arrival: when the broker offers a delivery to a subscription
(``Subscription.offer``), its ``Preparer`` starts the result for the subscription's audience
(its credentials, operation and variables), once for all the subscriptions of that audience,
and concurrently with the results of other events. A subscriber that gets to the event finds
its result made, or waits for it, and only sends it: the result goes back to graphql-core as
the event's execution (``Context.prepared``, ``InkwellExecutor.execute_operation``).

An event is read in a unit of work shared by every result made for one set of credentials
(``SharedRead``: one session and one set of DataLoaders, whose batches gather the keys of all
of them), so a thousand subscribers to one post cost the statements of one. Multiplexing
subscribers with the same session variables is how Hasura serves live queries.
Source: Hasura docs, "Subscription execution" (one query per group of subscribers with equal
session variables and query); GraphQL spec, "MapSourceToResponseEvent"; SQLAlchemy docs,
"When do I construct a Session" (a session per unit of work).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from graphql import ExecutionResult, Executor, OperationDefinitionNode

from schema.auth.viewer import authenticate, bearer_token
from schema.context import Context
from schema.live.events import Event
from schema.live.subscription import Delivery

#: Turns an event into what the subscription yields (``None``: not for this subscriber), read
#: in the given context (the event's shared unit of work).
type Resolve[T] = Callable[[Context, Event], Awaitable[T | None]]

#: An event's result for one audience: the item the subscription yields and graphql-core's
#: result for it, or ``None`` when the event is not for that audience.
type Outcome = tuple[Any, ExecutionResult] | None


class EventExecutors:
    """Builds the executor of each event of one subscription operation: ``executors(event,
    context)`` runs the operation's selection on ``event`` with ``context``.

    Each event gets an executor built afresh (graphql-core's ``Executor.build``), not
    graphql-core's ``build_per_event_executor``: its copies share the subscription
    executor's memo of collected subfields, keyed by lists that every event makes anew, so
    that memo grew with every event for as long as the subscription lasted (found by
    ``bench/soak.py``: 38,566 ``FieldDetails`` alive in a worker after 14 minutes).
    ``operation`` and ``variables`` (coerced) say which subscribers share a result.
    """

    def __init__(
        self,
        build: Callable[[Any, Context], Executor],
        operation: OperationDefinitionNode,
        variables: dict[str, Any],
    ) -> None:
        self._build = build
        self.operation = operation
        self.variables = variables

    def __call__(self, event: Any, context: Context) -> Executor:
        return self._build(event, context)


class Preparer:
    """Makes one subscription's results for the deliveries offered to it, sharing each with
    the other subscriptions of its audience.

    ``ctx`` is the subscriber's operation context (its credentials and settings),
    ``executors`` builds the executor of each event (and names the operation and coerced
    variables: ``Context.event_executors``), ``resolve`` is the field's event to item
    function.
    Subscriptions with the same bearer token, the same parsed operation (the parse cache
    hands out one per text) and equal variables are one audience. The broker calls
    ``offered`` and ``dropped``; the subscriber calls ``take``.
    """

    def __init__(self, ctx: Context, executors: EventExecutors, resolve: Resolve[Any]) -> None:
        self._ctx = ctx
        self._executors = executors
        self._resolve = resolve
        self._token = bearer_token(ctx.authorization)
        #: The subscription's context variables (its trace span), made in ``follow``.
        self._context = contextvars.copy_context()
        variables = variables_key(executors.variables)
        # Unhashable variables (a list): an audience of one.
        self._key: Hashable = (
            self._token,
            _Same(executors.operation),
            variables if variables is not None else _Same(self),
        )

    def offered(self, delivery: Delivery) -> None:
        """``delivery`` was queued for this subscription: start its result (if nobody in the
        audience has) and count this subscription as waiting for it. Never waits."""
        entry = delivery.prepared.get(self._key)
        if entry is None:
            entry = delivery.prepared[self._key] = _Entry()
            # In this subscription's context (its span holds the statements), not the
            # committing request's, which is current when in-process delivery offers it.
            entry.task = asyncio.get_running_loop().create_task(
                self._prepare(delivery, entry), context=self._context.copy()
            )
        entry.waiting += 1

    def dropped(self, delivery: Delivery) -> None:
        """This subscription will not take ``delivery`` after all (or has taken it); the last
        one of its audience to say so lets its result go."""
        entry = delivery.prepared.get(self._key)
        if entry is not None:
            entry.waiting -= 1
            if entry.waiting <= 0:
                del delivery.prepared[self._key]

    async def take(self, delivery: Delivery) -> Outcome:
        """The result of ``delivery`` for this subscription, made now if it was never offered
        (an event read back). Raises what reading it raised (``AuthenticationFailed`` once
        the credentials are no longer valid, ``ServiceUnavailable``)."""
        if self._key not in delivery.prepared:
            self.offered(delivery)
        entry = delivery.prepared[self._key]
        try:
            if not entry.done:
                # A future of this subscriber's own: its leaving cancels nobody else's
                # wait, and the result wakes it in one turn of the loop.
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                entry.waiters.append(waiter)
                await waiter
            if entry.error is not None:
                raise entry.error
            return entry.outcome
        finally:
            self.dropped(delivery)

    async def _prepare(self, delivery: Delivery, entry: _Entry) -> None:
        assert self._ctx.broker is not None
        async with self._ctx.broker.reading:
            shared = SharedRead.enter(self._ctx, delivery, self._token)
            try:
                entry.settle(await self._outcome(shared.context, delivery))
            except Exception as error:
                entry.settle(None, error)
            except BaseException:  # cancelled (the loop shutting down): nobody waits forever
                entry.settle(None, RuntimeError("the event's read was cancelled"))
                raise
            finally:
                # Its subscribers are already on their way: the unit of work ends after.
                await shared.leave()

    async def _outcome(self, ctx: Context, delivery: Delivery) -> Outcome:
        ctx.viewer = await authenticate(ctx, self._token)
        item = await self._resolve(ctx, delivery.event)
        if item is None:
            return None
        # Its resolvers read in the shared unit of work.
        executor = self._executors(item, ctx)
        made = executor.execute_operation(False)
        # A subscription's event never streams (no @defer or @stream): one result.
        result = await made if executor.is_awaitable(made) else made
        assert isinstance(result, ExecutionResult)
        return item, result


class SharedRead:
    """The unit of work in which one delivery is read for one set of credentials (``key``: a
    bearer token, or ``None`` for anonymous): a context of its own, whose viewer is theirs,
    closed when the last result made in it is complete."""

    def __init__(self, delivery: Delivery, key: Hashable, context: Context) -> None:
        self.context = context
        self._delivery = delivery
        self._key = key
        self._readers = 0

    @classmethod
    def enter(cls, ctx: Context, delivery: Delivery, key: Hashable) -> SharedRead:
        """The delivery's shared read for ``key`` (created, with ``ctx``'s settings, if there
        is none), counting one more reader in."""
        shared: SharedRead | None = delivery.readers.get(key)
        if shared is None:
            # Read-only: nothing an event's read loads is written back, so on PostgreSQL it
            # reads on the driver, as a query does (``Context.reads_on_driver``).
            context = Context(
                ctx.settings,
                ctx.sessionmaker,
                read_sessions=ctx.read_sessions,
                read_only=True,
                broker=ctx.broker,
                viewers=ctx.viewers,
                shared=True,
            )
            shared = delivery.readers[key] = cls(delivery, key, context)
        shared._readers += 1
        return shared

    async def leave(self) -> None:
        """Count one reader out; the last one closes the unit of work."""
        self._readers -= 1
        if self._readers > 0:
            return
        if self._delivery.readers.get(self._key) is self:
            del self._delivery.readers[self._key]
        await self.context.close()


def variables_key(variables: dict[str, Any] | None) -> Hashable | None:
    """A hashable form of an operation's coerced variables, or ``None`` when a value is not
    hashable (a list, an input object)."""
    if not variables:
        return ()
    try:
        key = tuple(sorted(variables.items()))
        hash(key)
    except TypeError:
        return None
    return key


class _Entry:
    """A delivery's result for one audience: the task making it, what it made (or the error
    it raised) once ``done``, the subscribers waiting for it now (``waiters``), and how many
    subscriptions still have to take it (``waiting``)."""

    __slots__ = ("done", "error", "outcome", "task", "waiters", "waiting")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None  # kept: the loop holds tasks weakly
        self.done = False
        self.outcome: Outcome = None
        self.error: Exception | None = None
        self.waiters: list[asyncio.Future[None]] = []
        self.waiting = 0

    def settle(self, outcome: Outcome, error: Exception | None = None) -> None:
        """Keep the result (or ``error``) and wake everyone waiting for it."""
        self.done, self.outcome, self.error = True, outcome, error
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class _Same:
    """Hashes and compares by identity (an AST node hashes over its whole tree), keeping its
    object alive while a key holds it, so an id is never taken for another object's."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return type(other) is _Same and other.obj is self.obj
