"""Rate limits (``schema.engine.rate_limits``): token buckets charged with each operation's
estimated cost, per viewer or client address, and sign-in and registration attempts per
account and address; shared through Redis (127.0.0.1:6379 here and in CI) by separate server
instances; per process, with one warning line, while Redis cannot be reached.

Every bucket refills at most a point every 1,000 s, so a burst's count never depends on how
fast the test runs; every test that touches Redis uses a key prefix of its own."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError
from starlette.testclient import TestClient

from cli.serve import trusted_proxies
from schema.engine import redis_link
from schema.engine.rate_limits.buckets import Bucket, Charge, ProcessBuckets
from schema.engine.rate_limits.redis_buckets import RedisBuckets
from schema.engine.redis_link import RedisLink
from server import create_app
from settings import Settings
from tests.conftest import ADMIN_ID, TEST_SECRET, app_settings, bearer, running_app
from tests.live import free_port, live_server, serve_command
from tests.redis_server import REDIS, the_outage_line

#: A point back every 1,000 s: no bucket refills while a test runs.
SLOW = 0.001
CHEAP = "{ __typename }"
#: 30 estimated rows: 31 points.
COSTLY = "{ users(first: 30) { totalCount } }"
LOGIN = """mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) {
           __typename } }"""
REGISTER = """mutation($e: String!) { register(input: {email: $e, name: "New", password:
              "long enough"}) { __typename } }"""


def unique_prefix() -> str:
    return f"inkwell-test:{uuid.uuid4().hex}:"


def refused(response: httpx.Response) -> int:
    """Assert ``response`` is a rate limit's refusal (429, ``Retry-After``, one
    ``RATE_LIMITED`` error carrying the same wait, no data); return the wait."""
    assert response.status_code == 429, response.text
    body = response.json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    wait = int(response.headers["retry-after"])
    assert error["extensions"]["retryAfterSeconds"] == wait >= 1
    return wait


def refusals(limit: str) -> float:
    return REGISTRY.get_sample_value("inkwell_rate_limited_total", {"limit": limit}) or 0.0


@pytest.mark.parametrize("kept", ["process", "redis"])
async def test_a_full_bucket_takes_exactly_its_capacity_whatever_the_rate(
    kept: str, redis_client: Any
) -> None:
    # Rates whose microseconds per point are no whole number: rounding never costs a point.
    for capacity, per_second in ((3, 0.003), (7, 0.007), (10, 0.0011), (5, SLOW)):
        link = RedisLink(REDIS)
        buckets = ProcessBuckets() if kept == "process" else RedisBuckets(link, unique_prefix())
        bucket = Bucket(capacity, per_second)
        waits = [await buckets.charge([Charge("k", bucket, 1)]) for _ in range(capacity + 1)]
        assert waits[:capacity] == [0.0] * capacity
        assert 0.99 / per_second <= waits[capacity] <= 1 / per_second
        # Two buckets charged at once: both or neither (a bucket of one point, untouched).
        other = Charge("other", Bucket(1, per_second), 1)
        assert await buckets.charge([other, Charge("k", bucket, 1)]) > 0
        assert await buckets.charge([other]) == 0.0
        await link.close()


async def test_a_bucket_refilled_within_a_millisecond_is_still_kept_in_redis(
    redis_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Its key would expire in under a millisecond: PX 0 is an error, and every charge of
    # such a bucket (a generous limit) fell back to the process's, with a warning.
    caplog.set_level(logging.WARNING, logger="inkwell.redis")
    link, prefix = RedisLink(REDIS), unique_prefix()
    try:
        buckets = RedisBuckets(link, prefix)
        assert await buckets.charge([Charge("fast", Bucket(10**9, 10**9), 50)]) == 0.0
        assert [r for r in caplog.records if r.name == "inkwell.redis"] == []
    finally:
        await link.close()


async def test_a_burst_gets_exactly_the_allowed_number_through_and_the_rest_429(
    read_db_url: str,
) -> None:
    settings = app_settings(read_db_url, rate_limit_points=5, rate_limit_points_per_second=SLOW)
    before = refusals("operation")
    async with running_app(settings) as app:
        answers = [await app.client.post("/graphql", json={"query": CHEAP}) for _ in range(8)]
        assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
        # The bucket is one point short: it comes back in 1,000 s, whole seconds rounded up.
        assert all(990 <= refused(a) <= 1000 for a in answers[5:])
        assert all(a.json()["data"] is None for a in answers[5:])
        # Nothing of a refused operation ran: not a statement.
        app.statements.clear()
        graphql = {"accept": "application/graphql-response+json"}
        answer = await app.client.post("/graphql", json={"query": CHEAP}, headers=graphql)
        refused(answer)
        assert "data" not in answer.json() and app.statements == []
    assert refusals("operation") == before + 4


async def test_a_costly_operation_takes_more_of_the_bucket(read_db_url: str) -> None:
    settings = app_settings(read_db_url, rate_limit_points=100, rate_limit_points_per_second=SLOW)
    async with running_app(settings) as app:
        statuses = [
            (await app.client.post("/graphql", json={"query": COSTLY})).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]  # 3 x 31 points of 100
        # 7 points left of the 31 it needs: 24 short, 24,000 s.
        assert (
            23_990 <= refused(await app.client.post("/graphql", json={"query": COSTLY})) <= 24_000
        )
        # The 7 points left pass 7 cheap operations, one point each, and no more.
        statuses = [
            (await app.client.post("/graphql", json={"query": CHEAP})).status_code for _ in range(8)
        ]
        assert statuses == [200] * 7 + [429]
    # An operation costing more than the whole bucket runs on a full one, and empties it.
    settings = app_settings(read_db_url, rate_limit_points=10, rate_limit_points_per_second=SLOW)
    async with running_app(settings) as app:
        assert (await app.client.post("/graphql", json={"query": COSTLY})).status_code == 200
        refused(await app.client.post("/graphql", json={"query": CHEAP}))


async def test_signed_in_viewers_have_buckets_of_their_own(read_db_url: str) -> None:
    settings = app_settings(read_db_url, rate_limit_points=2, rate_limit_points_per_second=SLOW)
    async with running_app(settings) as app:

        async def status(user: int | None) -> int:
            headers = bearer(settings, user) if user is not None else None
            response = await app.client.post("/graphql", json={"query": CHEAP}, headers=headers)
            return response.status_code

        assert [await status(None) for _ in range(3)] == [200, 200, 429]
        assert [await status(ADMIN_ID) for _ in range(3)] == [200, 200, 429]
        assert [await status(2) for _ in range(3)] == [200, 200, 429]
        assert await status(None) == 429  # the address's bucket is still empty


def test_an_operation_over_a_websocket_gets_the_error(read_db_url: str) -> None:
    settings = app_settings(read_db_url, rate_limit_points=2, rate_limit_points_per_second=SLOW)
    with (
        TestClient(create_app(settings)) as http,
        http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws,
    ):
        ws.send_json({"type": "connection_init", "payload": {}})
        assert ws.receive_json()["type"] == "connection_ack"
        answers = []
        for n in range(3):
            ws.send_json({"id": str(n), "type": "subscribe", "payload": {"query": CHEAP}})
            answers.append(ws.receive_json())
            if answers[-1]["type"] == "next":
                assert ws.receive_json()["type"] == "complete"
        assert [a["payload"].get("data") for a in answers[:2]] == [{"__typename": "Query"}] * 2
        payload = answers[2]["payload"]
        [error] = payload if isinstance(payload, list) else payload["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert 990 <= error["extensions"]["retryAfterSeconds"] <= 1000


async def test_login_attempts_are_limited_per_account_and_per_address(write_db_url: str) -> None:
    settings = app_settings(
        write_db_url, login_attempts_per_account=3, login_attempts_per_address=5
    )
    before = refusals("login")
    async with running_app(settings) as app:

        async def login(email: str, password: str = "wrong password") -> httpx.Response:
            variables = {"e": email, "p": password}
            return await app.client.post("/graphql", json={"query": LOGIN, "variables": variables})

        # The waits run from the first charge: each wrong password costs an Argon2 verify,
        # which a loaded machine may stretch past a second, so the time taken is measured.
        started = time.monotonic()
        for _ in range(3):
            answer = await login("admin@example.com")
            assert answer.json()["data"]["login"]["__typename"] == "Unauthenticated"
        # The account's bucket is empty: even the right password waits (300 s / 3 a point).
        app.statements.clear()
        answer = await login(" ADMIN@example.com ", "inkwell-demo")  # the same account
        assert 100 - (time.monotonic() - started) <= refused(answer) <= 100
        assert answer.json()["data"] == {"login": None}
        assert not [s for s in app.statements if "users" in s]  # never read, never hashed
        # Another account from the same address: two more attempts, then the address's
        # bucket (5) is empty too, whatever the account.
        statuses = [(await login("nobody@example.com")).status_code for _ in range(2)]
        assert statuses == [200, 200]
        wait = refused(await login("somebody.else@example.com"))
        assert 60 - (time.monotonic() - started) <= wait <= 60
    assert refusals("login") == before + 2


async def test_registrations_are_limited_per_address(write_db_url: str) -> None:
    settings = app_settings(write_db_url, register_attempts_per_address=2)
    async with running_app(settings) as app:
        kinds = []
        for n in range(2):
            variables = {"e": f"new.{n}@example.com"}
            body = await app.data(REGISTER, variables)
            kinds.append(body["register"]["__typename"])
        assert kinds == ["AuthPayload", "AuthPayload"]
        variables = {"e": "new.2@example.com"}
        answer = await app.client.post("/graphql", json={"query": REGISTER, "variables": variables})
        refused(answer)
        body = await app.data("{ users(first: 100) { edges { node { name } } } }", as_user=ADMIN_ID)
        assert [e["node"]["name"] for e in body["users"]["edges"]].count("New") == 2


def test_two_instances_share_one_limit_through_redis(read_db_url: str, redis_client: Any) -> None:
    prefix = unique_prefix()
    env = {
        "DATABASE_URL": read_db_url,
        "JWT_SECRET": TEST_SECRET,
        "REDIS_URL": REDIS,
        "RATE_LIMIT_KEY_PREFIX": prefix,
        "RATE_LIMIT_POINTS": "6",
        "RATE_LIMIT_POINTS_PER_SECOND": str(SLOW),
    }
    with live_server(**env) as one, live_server(**env) as other:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(
                    *(
                        client.post(f"{(one, other)[n % 2]}/graphql", json={"query": CHEAP})
                        for n in range(20)
                    )
                )

        answers = asyncio.run(burst())
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 6 and statuses.count(429) == 14, statuses
    assert all(990 <= refused(a) <= 1000 for a in answers if a.status_code == 429)
    # One bucket, by the client's address, full again in 6,000 s.
    [key] = redis_client.keys(f"{prefix}*")
    assert key == f"{prefix}op:addr:127.0.0.1".encode()
    assert 5_900_000 <= redis_client.pttl(key) <= 6_000_000


async def test_redis_unreachable_limits_per_process_with_one_warning(
    read_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = app_settings(
        read_db_url,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        rate_limit_points=3,
        rate_limit_points_per_second=SLOW,
    )
    caplog.set_level(logging.WARNING, logger="inkwell.redis")
    async with running_app(settings) as app:
        statuses = [
            (await app.client.post("/graphql", json={"query": CHEAP})).status_code for _ in range(6)
        ]
        answer = await app.client.post(
            "/graphql", json={"query": LOGIN, "variables": {"e": "admin@example.com", "p": "x"}}
        )
    assert statuses == [200, 200, 200, 429, 429, 429]
    assert answer.status_code == 429  # the address's bucket: the same process's
    assert "Redis unavailable" in the_outage_line(caplog)


async def test_the_limits_go_back_to_redis_when_it_answers_again(
    read_db_url: str, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_link, "RETRY_SECONDS", 0.0)  # ask Redis at every charge
    port, prefix = free_port(), unique_prefix()
    settings = app_settings(
        read_db_url,
        redis_url=f"redis://127.0.0.1:{port}/0",
        rate_limit_key_prefix=prefix,
        rate_limit_points=3,
        rate_limit_points_per_second=SLOW,
    )

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Redis on ``port``: every connection relayed to the real one.
        upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", 6379)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream), pipe(upstream_reader, writer))

    async with running_app(settings) as app:
        # Nothing listens on the port: the process's own bucket.
        assert (await app.client.post("/graphql", json={"query": CHEAP})).status_code == 200
        assert redis_client.keys(f"{prefix}*") == []
        relay = await asyncio.start_server(forward, "127.0.0.1", port, reuse_address=True)
        async with relay:
            # Redis answers: its bucket, new and full, takes the next three.
            statuses = [
                (await app.client.post("/graphql", json={"query": CHEAP})).status_code
                for _ in range(4)
            ]
            assert statuses == [200, 200, 200, 429]
            assert redis_client.keys(f"{prefix}*") == [f"{prefix}op:addr:127.0.0.1".encode()]
            await app.app.state.redis.close()  # before the relay stops


@contextmanager
def serving(**env: str) -> Iterator[str]:
    """``server.py serve`` with ``env`` (one worker, quiet) on a free port; yields its base URL."""
    with serve_command(LOG_LEVEL="warning", WORKERS="1", **env) as base:
        yield base


def test_x_forwarded_for_names_the_client_only_from_a_trusted_proxy(read_db_url: str) -> None:
    env = {
        "DATABASE_URL": read_db_url,
        "JWT_SECRET": TEST_SECRET,
        "RATE_LIMIT_POINTS": "1",
        "RATE_LIMIT_POINTS_PER_SECOND": str(SLOW),
    }

    def status(base: str, forwarded_for: str) -> int:
        headers = {"x-forwarded-for": forwarded_for}
        return httpx.post(f"{base}/graphql", json={"query": CHEAP}, headers=headers).status_code

    with serving(**env, TRUSTED_PROXIES="10.0.0.0/8,127.0.0.1") as behind_proxy:
        assert status(behind_proxy, "203.0.113.7") == 200
        assert status(behind_proxy, "203.0.113.7") == 429
        assert status(behind_proxy, "203.0.113.8") == 200  # another client, its own bucket
        # Read right to left through trusted hops: the client cannot choose by prepending.
        assert status(behind_proxy, "198.51.100.1, 203.0.113.9, 10.1.2.3") == 200
        assert status(behind_proxy, "203.0.113.8, 203.0.113.9") == 429
    # The proxy elsewhere: from 127.0.0.1 the header is the client's own word, ignored.
    with serving(**env, TRUSTED_PROXIES="10.0.0.0/8") as direct:
        assert status(direct, "203.0.113.7") == 200
        assert status(direct, "203.0.113.8") == 429


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match=r"'proxy\.local' is not an IP address or network"):
        Settings(trusted_proxies="10.0.0.0/8,proxy.local")  # type: ignore[arg-type]
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1,::1")
    assert Settings().trusted_proxies == ["10.0.0.0/8", "192.0.2.1", "::1"]
    monkeypatch.setenv("TRUSTED_PROXIES", "")
    assert Settings().trusted_proxies == []  # none: the peer is the client
    monkeypatch.delenv("TRUSTED_PROXIES")
    assert Settings().trusted_proxies == ["127.0.0.1", "::1"]  # uvicorn's default, loopback


def test_serve_takes_forwarded_allow_ips_when_trusted_proxies_is_not_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An upgrade behind a proxy that set uvicorn's own variable keeps counting clients, not
    # the proxy, by their address (sign-in limits are on by default).
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.5, 10.0.0.6")
    assert trusted_proxies(Settings()) == ["10.0.0.5", "10.0.0.6"]
    assert trusted_proxies(Settings(trusted_proxies=["192.0.2.1"])) == ["192.0.2.1"]
    assert trusted_proxies(Settings(trusted_proxies=[])) == []
    monkeypatch.delenv("FORWARDED_ALLOW_IPS")
    assert trusted_proxies(Settings()) == ["127.0.0.1", "::1"]
