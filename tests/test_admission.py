"""At most ``MAX_CONCURRENT_OPERATIONS`` GraphQL operations over HTTP run at once per
process; the rest wait their turn, and what is not a GraphQL operation never waits
(``schema.transport.admission``)."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from schema.transport.admission import Admission
from tests.conftest import app_settings, running_app


async def test_places_are_taken_first_come_first_served() -> None:
    admission = Admission(2)
    inside: list[int] = []
    release = asyncio.Event()

    async def operation(n: int) -> None:
        async with admission.place():
            inside.append(n)
            await release.wait()

    tasks = [asyncio.create_task(operation(n)) for n in range(4)]
    await asyncio.sleep(0.01)
    assert inside == [0, 1]  # two in; two parked
    assert REGISTRY.get_sample_value("inkwell_operations_waiting") == 2
    tasks[2].cancel()  # a client that left while waiting takes no place
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert inside == [0, 1, 3] and admission.running == 0
    assert REGISTRY.get_sample_value("inkwell_operations_waiting") == 0


async def test_no_limit_lets_every_operation_in() -> None:
    admission = Admission(None)
    async with admission.place(), admission.place(), admission.place():
        assert admission.running == 3


async def test_an_operation_waits_for_its_turn_and_health_checks_do_not(
    read_db_url: str,
) -> None:
    settings = app_settings(read_db_url, max_concurrent_operations=1)
    async with running_app(settings) as app:
        admission: Admission = app.app.state.admission
        assert admission.limit == 1
        async with admission.place():  # the one place, held
            waiting = asyncio.create_task(app.data("{ __typename }"))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            health = await app.client.get("/healthz")
            assert health.status_code == 200
            assert not waiting.done()
        assert await asyncio.wait_for(waiting, 10) == {"__typename": "Query"}
        # Many at once: each takes its turn, and every one is answered.
        answers = await asyncio.gather(*(app.data("{ __typename }") for _ in range(5)))
        assert answers == [{"__typename": "Query"}] * 5 and admission.running == 0
