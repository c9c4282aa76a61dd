"""The extension runner's phases: hooks run as nested ``with`` statements would run them.

Unit tests of ``schema.engine.extensions.runner`` with extensions that record what they see; the
HTTP tests cover the real extensions through it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from strawberry.extensions import SchemaExtension

from schema.engine.extensions.runner import _Executing, _Operation


def _recording(name: str, log: list[str], *, fail_on_entry: bool = False) -> SchemaExtension:
    class Recording(SchemaExtension):
        async def on_execute(self) -> AsyncIterator[None]:
            log.append(f"enter {name}")
            if fail_on_entry:
                raise ValueError(f"{name} refused")
            try:
                yield
            except Exception as exc:
                log.append(f"{name} saw {exc}")
                raise
            log.append(f"exit {name}")

    return Recording()


class _Swallowing(SchemaExtension):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def on_execute(self) -> Iterator[None]:
        try:
            yield
        except ValueError as exc:
            self.log.append(f"swallowed {exc}")


class _Replacing(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        try:
            yield
        except ValueError as exc:
            raise KeyError("replaced") from exc


class _Plain(SchemaExtension):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def on_operation(self) -> None:  # type: ignore[override]
        self.log.append("plain coroutine hook")


async def test_hooks_enter_in_order_and_exit_in_reverse() -> None:
    log: list[str] = []
    async with _Executing([_recording("a", log), _recording("b", log)]):
        log.append("body")
    assert log == ["enter a", "enter b", "body", "exit b", "exit a"]


async def test_an_error_in_the_body_reaches_every_hook_and_goes_on() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="boom"):
        async with _Executing([_recording("a", log), _recording("b", log)]):
            raise ValueError("boom")
    assert log == ["enter a", "enter b", "b saw boom", "a saw boom"]


async def test_a_hook_failing_on_entry_unwinds_the_hooks_entered_before_it() -> None:
    log: list[str] = []
    phase = _Executing(
        [_recording("a", log), _recording("b", log, fail_on_entry=True), _recording("c", log)]
    )
    with pytest.raises(ValueError, match="b refused"):
        async with phase:
            log.append("body")  # pragma: no cover - never reached
    assert log == ["enter a", "enter b", "a saw b refused"]


async def test_an_error_an_inner_hook_swallows_goes_no_further_out_but_still_propagates() -> None:
    # Strawberry's phases never swallow: the operation still fails, but outer hooks exit
    # cleanly, as ExitStack passes them no exception once an inner exit swallowed it.
    log: list[str] = []
    with pytest.raises(ValueError, match="boom"):
        async with _Executing([_recording("a", log), _Swallowing(log)]):
            raise ValueError("boom")
    assert log == ["enter a", "swallowed boom", "exit a"]


async def test_an_error_an_exit_raises_replaces_the_one_before_it() -> None:
    log: list[str] = []
    with pytest.raises(KeyError) as raised:
        async with _Executing([_recording("a", log), _Replacing()]):
            raise ValueError("boom")
    assert isinstance(raised.value.__cause__, ValueError)
    assert log == ["enter a", "a saw 'replaced'"]


async def test_plain_hooks_run_on_entry_and_async_ones_refuse_a_sync_phase() -> None:
    log: list[str] = []
    async with _Operation([_Plain(log)]):
        log.append("body")
    assert log == ["plain coroutine hook", "body"]
    with (
        pytest.raises(RuntimeError, match="failed to complete synchronously"),
        _Executing([_recording("a", log)]),
    ):
        pass  # pragma: no cover - never reached


def test_a_synchronous_phase_exits_its_hooks_by_the_same_rules() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="boom"), _Executing([_Swallowing(log), _Swallowing(log)]):
        raise ValueError("boom")
    assert log == ["swallowed boom"]  # the outer hook saw no exception
