"""Batch fields: a field declared once, by its batch resolver.

The breadth-first executor (``schema.engine.executor.run``) resolves a field for all the
parents of a level with one call of its batch resolver (``schema.reads.batch``).
graphql-core's path (introspection fallbacks, mutation payloads, subscription events,
``QUERY_EXECUTOR=graphql-core``) calls a resolver per object. ``batch_field`` declares a field
by its batch resolver alone and derives the per-object resolver from it: each object's call
loads through a per-operation DataLoader whose batch function is the batch resolver, keyed by
the field and its argument values (``field_loader``), so the siblings asking the same field
with the same arguments are resolved by one call of it, as a level is by the breadth-first
executor. Nothing about the field is written twice, so the two paths cannot drift. The
breadth-first executor reads what is declared here (``batch_resolver_of``, ``edges_of``);
declaring a field needs nothing of the engine, so the Relay types and the domains declare
theirs from the read path.

Source: the DataLoader pattern, in which per-object loads made in one tick reach one call of
a batch function, graphql/dataloader README (https://github.com/graphql/dataloader); Strawberry
docs, "DataLoaders".
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, cast, get_args, get_origin

import strawberry
from strawberry.types.field import StrawberryField

from schema.reads.batch import PER_OBJECT

if TYPE_CHECKING:
    from schema.context import Context
    from schema.reads.loaders import SharedLoader

#: ``(context, parents, **arguments) -> one value per parent`` (an ``Exception`` instance for
#: a parent whose field failed), or an awaitable of that list. ``arguments`` are the field's
#: arguments as its Strawberry resolver receives them (Python names, input objects built).
BatchResolver = Callable[..., Sequence[Any] | Awaitable[Sequence[Any]]]

#: The per-object resolver ``batch_field`` derived -> the batch resolver it derived it from.
#: Both paths call the batch resolver through this entry.
_BATCHED: dict[Callable[..., Any], BatchResolver] = {}
#: Batch resolvers of edges -> (the parent's attribute holding the nodes, the edge's field).
_EDGES: dict[BatchResolver, tuple[str, str]] = {}

_PARAMETER = inspect.Parameter.POSITIONAL_OR_KEYWORD
_LIST = re.compile(r"\s*list\[(?P<item>.+)\]\s*")


def batch_field(
    *, description: str | None = None, edges_over: tuple[str, str] | None = None
) -> Callable[[BatchResolver], StrawberryField]:
    """Declare a Strawberry field by its batch resolver, the field's only implementation.

    Decorates a function in the type's class body, ``(context, parents, *arguments)`` ->
    ``list[T]``: ``context`` is the operation's ``Context``, ``parents`` the objects of one
    level (duplicates allowed), the arguments are the field's, declared as a resolver's
    (annotated, with defaults and ``strawberry.argument`` descriptions); it returns one value
    per parent, in order (an ``Exception`` instance for a parent whose field failed), or an
    awaitable of them for an ``async def``. The field's name is the function's, its type
    ``T``, its description ``description``.

    Returns the ``StrawberryField``. Its resolver, the per-object one graphql-core calls, is
    derived: for an ``async`` batch resolver it loads the object through ``field_loader``;
    for a synchronous one (no I/O: cursors, ids) it calls the batch resolver with the object
    alone. Either way it raises what the batch resolver raises or returns as the object's
    value. The breadth-first executor finds the batch resolver with ``batch_resolver_of``.

    ``edges_over=(nodes, node)`` declares that the values are edges over the parent's list
    ``nodes``: for each parent, one edge per item of ``getattr(parent, nodes)``, in order,
    whose field ``node`` is that item (a Relay connection's ``edges``). When a selection
    reads nothing of the edges but ``node`` (and ``__typename``), the breadth-first executor
    completes them from the nodes without calling the batch resolver (``edges_of``).

    Raises ``TypeError`` for a function of another shape (fewer than two parameters, ``*``
    or keyword-only parameters, a return annotation that is not ``list[T]``).
    """

    def declare(batch: BatchResolver) -> StrawberryField:
        resolver = _per_object(batch)
        _BATCHED[resolver] = batch
        if edges_over is not None:
            _EDGES[batch] = edges_over
        field: StrawberryField = strawberry.field(resolver=resolver, description=description)
        return field

    return declare


def _per_object(batch: BatchResolver) -> Callable[..., Any]:
    """The per-object resolver derived from ``batch``: the signature Strawberry reads is
    ``(self, info, *arguments) -> T``, annotations evaluated in ``batch``'s module."""
    signature = inspect.signature(batch)
    parameters = list(signature.parameters.values())
    if len(parameters) < 2 or any(p.kind is not _PARAMETER for p in parameters):
        raise TypeError(f"{batch.__qualname__}: a batch field takes (context, parents, *args)")
    item = _item_of(signature.return_annotation, batch)
    arguments = parameters[2:]
    resolve: Callable[..., Any] = _loading() if inspect.iscoroutinefunction(batch) else _calling()
    resolve.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("self", _PARAMETER),
            inspect.Parameter("info", _PARAMETER, annotation=strawberry.Info),
            *arguments,
        ],
        return_annotation=item,
    )
    resolve.__annotations__ = {
        "info": strawberry.Info,
        **{p.name: p.annotation for p in arguments},
        "return": item,
    }
    resolve.__module__ = batch.__module__
    resolve.__name__ = batch.__name__
    resolve.__qualname__ = batch.__qualname__
    resolve.__doc__ = batch.__doc__
    return resolve


def _loading() -> Callable[..., Awaitable[Any]]:
    """A per-object resolver for an ``async`` batch resolver: through ``field_loader``."""

    async def resolve(self: Any, info: strawberry.Info, **arguments: Any) -> Any:
        return await field_loader(info.context, resolve, arguments).load(self)

    return resolve


def _calling() -> Callable[..., Any]:
    """A per-object resolver for a synchronous batch resolver: called with the object alone,
    as there is no I/O to batch."""

    def resolve(self: Any, info: strawberry.Info, **arguments: Any) -> Any:
        [value] = cast(Sequence[Any], _BATCHED[resolve](info.context, [self], **arguments))
        if isinstance(value, Exception):
            raise value
        return value

    return resolve


def _item_of(annotation: Any, batch: BatchResolver) -> Any:
    """``T`` of the return annotation ``list[T]`` (a string under postponed annotations)."""
    if isinstance(annotation, str):
        match = _LIST.fullmatch(annotation)
        if match is not None:
            return match["item"]
    elif get_origin(annotation) is list:
        return get_args(annotation)[0]
    raise TypeError(f"{batch.__qualname__}: a batch field returns list[T], T the field's type")


def field_loader(
    ctx: Context, resolver: Callable[..., Any], arguments: dict[str, Any]
) -> SharedLoader:
    """The operation's DataLoader for the field whose derived resolver is ``resolver``, asked
    with ``arguments`` (as the resolver receives them). Its keys are parent objects; its batch
    function calls the batch resolver with the unit of work's context (the loader is that
    unit's, ``ctx.loaders``), the parents and ``arguments``, under
    ``PER_OBJECT``. Equal arguments (input objects compared field by field) share a loader,
    so the siblings of one level load in one call of the batch resolver.

    Raises ``KeyError`` for a resolver ``batch_field`` did not derive.
    """
    key = ("field", resolver, _frozen(arguments))
    loader = ctx.loaders.find(key)
    if loader is not None:
        return loader
    batch = _BATCHED[resolver]

    async def load(parents: list[Any]) -> Sequence[Any]:
        per_object = PER_OBJECT.set(True)
        try:
            return await cast(Awaitable[Sequence[Any]], batch(ctx, parents, **arguments))
        finally:
            PER_OBJECT.reset(per_object)

    return ctx.loaders.for_field(key, load)


def _frozen(value: Any) -> Hashable:
    """A hashable form of an argument value: input objects and lists as tuples of their
    parts; anything else unhashable by identity (the loader's batch function keeps it alive
    while the key is in use)."""
    if isinstance(value, dict):
        return tuple(sorted((name, _frozen(item)) for name, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = tuple(_frozen(getattr(value, f.name)) for f in dataclasses.fields(value))
        return (type(value), parts)
    try:
        hash(value)
    except TypeError:
        return ("unhashable", id(value))
    return value


def batch_resolver_of(resolver: Callable[..., Any]) -> BatchResolver | None:
    """The batch resolver ``batch_field`` derived ``resolver`` (a Strawberry field's resolver
    function) from, or ``None``."""
    return _BATCHED.get(resolver)


def edges_of(batch: BatchResolver) -> tuple[str, str] | None:
    """``(nodes, node)`` as ``batch_field(edges_over=...)`` declared them for ``batch``, or
    ``None``."""
    return _EDGES.get(batch)
