"""Strawberry's schema-extension runner, with each hook's kind worked out once per class.

For every operation and every phase (operation, parsing, validation, execution), Strawberry
inspects each extension's hook (``inspect.isasyncgenfunction`` and friends) and wraps it with
``contextlib.asynccontextmanager``, which copies the function's metadata
(``functools.update_wrapper``) anew each time. With nine extensions that is the largest part
of Strawberry's fixed cost per request. The kind of a hook is a property of the extension's
class, so this runner decides it once per class and builds the same context managers
directly; hooks run exactly as Strawberry runs them (entered in order, exited in reverse,
through its ``AsyncExitStack``).
Source: strawberry ``extensions/context.py`` (``ExtensionContextManagerBase.get_hook``) and
``extensions/runner.py``; Python ``contextlib``.
"""

from __future__ import annotations

import contextlib
import inspect
from functools import partial
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner

#: Per extension class: its own hooks by name, each as (kind, function).
_hooks: dict[type, dict[str, tuple[int, Any]]] = {}
_GENERATOR, _ASYNC_GENERATOR, _OTHER = range(3)
_PHASES = ("on_operation", "on_parse", "on_validate", "on_execute")


def _hooks_of(extension_type: type) -> dict[str, tuple[int, Any]]:
    found = _hooks.get(extension_type)
    if found is None:
        found = {}
        for name in _PHASES:
            hook = getattr(extension_type, name)
            if hook is getattr(SchemaExtension, name):
                continue  # not overridden: Strawberry skips it too
            if inspect.isgeneratorfunction(hook):
                found[name] = (_GENERATOR, hook)
            elif inspect.isasyncgenfunction(hook):
                found[name] = (_ASYNC_GENERATOR, hook)
            else:
                found[name] = (_OTHER, hook)
        _hooks[extension_type] = found
    return found


class _KnownHooks(ExtensionContextManagerBase):
    """Hooks from the per-class table; a hook that is not a (async) generator function is
    left to Strawberry's own wrapping."""

    def __init__(self, extensions: list[SchemaExtension]) -> None:
        name = self.HOOK_NAME
        self.default_hook = getattr(SchemaExtension, name)
        self.hooks = hooks = []
        for extension in extensions:
            entry = _hooks_of(type(extension)).get(name)
            if entry is None:
                continue
            kind, hook = entry
            if kind == _ASYNC_GENERATOR:
                # What ``contextlib.asynccontextmanager(hook)(extension)`` builds.
                manager: Any = partial(
                    contextlib._AsyncGeneratorContextManager, hook, (extension,), {}
                )
                hooks.append(WrappedHook(extension=extension, hook=manager, is_async=True))
            elif kind == _GENERATOR:
                manager = partial(contextlib._GeneratorContextManager, hook, (extension,), {})
                hooks.append(WrappedHook(extension=extension, hook=manager, is_async=False))
            else:
                wrapped = self.get_hook(extension)
                if wrapped is not None:
                    hooks.append(wrapped)


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
    per class (``_KnownHooks``). Stream results keep Strawberry's own manager."""

    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions)
