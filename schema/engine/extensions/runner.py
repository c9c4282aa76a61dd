"""Strawberry's schema-extension runner, with each hook's kind worked out once per class and
the hooks of a phase run as nested ``with`` statements, without an exit stack.

For every operation and every phase (operation, parsing, validation, execution), Strawberry
inspects each extension's hook (``inspect.isasyncgenfunction`` and friends), wraps it with
``contextlib.asynccontextmanager`` (which copies the function's metadata anew each time) and
enters it through an ``AsyncExitStack``. With nine extensions that is the largest part of
Strawberry's fixed cost per request. The kind of a hook is a property of the extension's
class, so this runner decides it once per class, and which extensions have a hook for a
phase once per sequence of extension classes (``_hooks_by_phase``); a phase then enters
each hook's context manager itself and exits them in reverse with ``AsyncExitStack``'s
rules (an exception goes to each exit in turn; one that an exit raises replaces it; one an
exit swallows goes no further out). As in Strawberry, the phase itself never swallows the
exception it exits with.

One difference, on purpose: when a hook fails on entry, the hooks of that phase already
entered are exited with that exception (as nested ``with`` statements would be), where
Strawberry's stack leaves them suspended for the garbage collector to close.
Source: strawberry ``extensions/context.py`` (``ExtensionContextManagerBase``) and
``extensions/runner.py``; Python ``contextlib`` (``ExitStack.__exit__``).
"""

from __future__ import annotations

import contextlib
import inspect
from types import TracebackType
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

#: Per extension class: its own hooks by name, each as (kind, function); a generator hook as
#: ``contextlib.contextmanager`` (or ``asynccontextmanager``) of it, made once.
_hooks: dict[type, dict[str, tuple[int, Any]]] = {}
_GENERATOR, _ASYNC_GENERATOR, _COROUTINE, _FUNCTION = range(4)
_PHASES = ("on_operation", "on_parse", "on_validate", "on_execute")
#: Per extension class: whether it overrides ``get_results`` (the default returns ``{}``).
_reports: dict[type, bool] = {}


#: Per phase name: each hook of the phase as (kind, function, the extension's position).
_PhaseHooks = dict[str, list[tuple[int, Any, int]]]
#: Per sequence of extension classes (one per schema, in practice): its hooks by phase.
_phase_hooks: dict[tuple[type, ...], _PhaseHooks] = {}


def _hooks_by_phase(extensions: list[SchemaExtension]) -> _PhaseHooks:
    """The hooks of ``extensions``, by phase, in the extensions' order."""
    classes = tuple(map(type, extensions))
    found = _phase_hooks.get(classes)
    if found is None:
        found = _phase_hooks[classes] = {
            name: [
                (entry[0], entry[1], at)
                for at, kind in enumerate(classes)
                if (entry := _hooks_of(kind).get(name)) is not None
            ]
            for name in _PHASES
        }
    return found


def _hooks_of(extension_type: type) -> dict[str, tuple[int, Any]]:
    found = _hooks.get(extension_type)
    if found is None:
        found = {}
        for name in _PHASES:
            hook = getattr(extension_type, name)
            if hook is getattr(SchemaExtension, name):
                continue  # not overridden: Strawberry skips it too
            if not callable(hook):
                raise ValueError(f"Hook {name} on {extension_type} must be callable")
            if inspect.isgeneratorfunction(hook):
                found[name] = (_GENERATOR, contextlib.contextmanager(hook))
            elif inspect.isasyncgenfunction(hook):
                found[name] = (_ASYNC_GENERATOR, contextlib.asynccontextmanager(hook))
            elif inspect.iscoroutinefunction(hook):
                found[name] = (_COROUTINE, hook)
            else:
                found[name] = (_FUNCTION, hook)
        _hooks[extension_type] = found
    return found


class _KnownHooks(ExtensionContextManagerBase):
    """The hooks of one phase of one operation, by the per-class table: entered in order,
    exited in reverse. A phase is entered once."""

    __slots__ = ("_entered", "_hooks")
    HOOK_NAME: str

    def __init__(self, extensions: list[SchemaExtension], hooks: _PhaseHooks | None = None) -> None:
        by_phase = hooks if hooks is not None else _hooks_by_phase(extensions)
        self._hooks = [(kind, hook, extensions[at]) for kind, hook, at in by_phase[self.HOOK_NAME]]
        #: The entered context managers (a generator hook's), each with whether it is async.
        self._entered: list[tuple[bool, Any]] = []

    def __enter__(self) -> None:
        entered = self._entered
        try:
            for kind, hook, extension in self._hooks:
                if kind == _GENERATOR:
                    manager = hook(extension)
                    manager.__enter__()
                    entered.append((False, manager))
                elif kind == _FUNCTION:
                    hook(extension)
                else:
                    raise RuntimeError(
                        f"SchemaExtension hook {extension}.{self.HOOK_NAME} "
                        "failed to complete synchronously."
                    )
        except BaseException as exc:
            self._unwind_sync(exc)
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        self._unwind_sync(exc)

    async def __aenter__(self) -> None:
        entered = self._entered
        try:
            for kind, hook, extension in self._hooks:
                if kind == _ASYNC_GENERATOR:
                    manager = hook(extension)
                    await manager.__aenter__()
                    entered.append((True, manager))
                elif kind == _GENERATOR:
                    manager = hook(extension)
                    manager.__enter__()
                    entered.append((False, manager))
                elif kind == _COROUTINE:
                    await hook(extension)
                else:
                    hook(extension)
        except BaseException as exc:
            await self._unwind(exc)
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._unwind(exc)

    async def _unwind(self, exc: BaseException | None) -> None:
        """Exit the entered hooks, innermost first, with ``exc`` (or with what an inner
        exit raised instead, or with none once an exit swallowed it); raises what an exit
        raised. A swallowed ``exc`` is not reported: the phase never swallows (Strawberry's
        doesn't), so its caller raises ``exc`` all the same."""
        entered, raised = self._entered, False
        while entered:
            is_async, manager = entered.pop()
            try:
                details = (type(exc), exc, exc.__traceback__) if exc is not None else _NONE
                done = await manager.__aexit__(*details) if is_async else manager.__exit__(*details)
                if done:
                    raised, exc = False, None
            except BaseException as new:
                if new is not exc:
                    _chain(new, exc)
                exc, raised = new, True
            finally:
                # Kept, the traceback would hold this frame once ``exc`` has passed through
                # it: a cycle (see ``masking.drop_tracebacks``).
                details = _NONE
        if raised:
            assert exc is not None
            raise exc

    def _unwind_sync(self, exc: BaseException | None) -> None:
        """``_unwind`` for a phase entered without ``await``: it holds no async hooks, so the
        coroutine finishes without suspending."""
        unwinding = self._unwind(exc)
        try:
            unwinding.send(None)
        except StopIteration:
            return
        unwinding.close()
        raise RuntimeError(f"{self.HOOK_NAME}: a synchronous phase waited")


_NONE = (None, None, None)


def _chain(new: BaseException, old: BaseException | None) -> None:
    """Make ``old`` the context of ``new`` (at the end of ``new``'s chain of contexts),
    unless it is there already: what ``ExitStack`` does (``_fix_exception_context``)."""
    if old is None:
        return
    seen = new
    while True:
        context = seen.__context__
        if context is None or context is old:
            break
        seen = context
    if context is None:
        seen.__context__ = old


class _Operation(_KnownHooks, OperationContextManager):
    __slots__ = ()


class _Parsing(_KnownHooks, ParsingContextManager):
    __slots__ = ()


class _Validation(_KnownHooks, ValidationContextManager):
    __slots__ = ()


class _Executing(_KnownHooks, ExecutingContextManager):
    __slots__ = ()


class KnownHooksRunner(SchemaExtensionsRunner):
    """Strawberry's ``SchemaExtensionsRunner`` whose phase context managers look hooks up
    per class (``_KnownHooks``), asking for results only the extensions that report any.
    Stream results keep Strawberry's own manager."""

    def __init__(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension] | None = None
    ) -> None:
        super().__init__(execution_context, extensions)
        self._by_phase = _hooks_by_phase(self.extensions)

    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions, self._by_phase)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions, self._by_phase)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions, self._by_phase)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions, self._by_phase)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for extension in self.extensions:
            kind = type(extension)
            reports = _reports.get(kind)
            if reports is None:
                reports = _reports[kind] = kind.get_results is not SchemaExtension.get_results
            if reports:
                results = extension.get_results()
                if inspect.isawaitable(results):
                    results = await results
                data.update(results)
        data.update(ctx.extensions_results)
        return data
