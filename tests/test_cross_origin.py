"""Cross-origin apps: one CORS policy for HTTP and WebSocket, the headers mainstream clients
and tracing tools send, origins as operators write them, and WebSocket credentials in the
shapes client libraries use (never silently anonymous)."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from schema.auth.connection_init import connection_authorization
from schema.errors import AuthenticationFailed
from schema.transport.cors import DEFAULT_ALLOWED_HEADERS
from settings import Settings
from tests.conftest import OWNER, TEST_SECRET, app_settings, prepare_write_db, running_app
from tests.live import Live, live_server
from tests.wsclient import ws_client

APP = "http://localhost:3000"
#: What Apollo Client, Sentry and OpenTelemetry's fetch instrumentation add to a request.
CLIENT_HEADERS = (
    "apollo-require-preflight, x-apollo-operation-name, apollographql-client-name, "
    "apollographql-client-version, traceparent, tracestate, baggage, sentry-trace, "
    "authorization, content-type"
)


@pytest.mark.parametrize(
    "written",
    [
        "http://localhost:3000",
        "http://localhost:3000/",
        " HTTP://LocalHost:3000/ , https://other.example",
        '["http://localhost:3000/"]',
    ],
)
def test_origins_are_read_as_operators_write_them(written: str) -> None:
    settings = Settings(_env_file=None, cors_allowed_origins=written)  # type: ignore[call-arg]
    assert APP in settings.cors_allowed_origins


@pytest.mark.parametrize("written", ["localhost:3000", "http://a.test/path", "[oops"])
def test_an_unreadable_origin_is_a_clear_configuration_error(written: str) -> None:
    with pytest.raises(ValueError, match=r"origin|JSON list"):
        Settings(_env_file=None, cors_allowed_origins=written)  # type: ignore[call-arg]


async def test_the_preflight_admits_what_mainstream_clients_send(read_db_url: str) -> None:
    settings = app_settings(
        read_db_url,
        cors_allowed_origins=f"{APP}/",
        cors_allowed_headers="X-Tenant",
        cors_max_age_seconds=1234,
    )
    async with running_app(settings) as app:
        for headers, allowed in ((CLIENT_HEADERS, True), ("x-tenant", True), ("x-evil", False)):
            response = await app.client.options(
                "/graphql",
                headers={
                    "origin": APP,
                    "access-control-request-method": "POST",
                    "access-control-request-headers": headers,
                },
            )
            assert (response.status_code == 200) is allowed, (headers, response.text)
        assert response.headers["access-control-allow-origin"] == APP
        assert response.headers["access-control-max-age"] == "1234"
        listed = response.headers["access-control-allow-headers"].lower()
        assert all(name in listed for name in DEFAULT_ALLOWED_HEADERS)
        elsewhere = await app.client.options(
            "/graphql",
            headers={"origin": "https://evil.test", "access-control-request-method": "POST"},
        )
        assert "access-control-allow-origin" not in elsewhere.headers


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, None),
        ({"Authorization": "Bearer t"}, "Bearer t"),
        ({"authorization": "Bearer t"}, "Bearer t"),
        ({"headers": {"Authorization": "Bearer t"}}, "Bearer t"),
        ({"headers": {"authorization": "Bearer t", "x-other": "1"}}, "Bearer t"),
        ({"authToken": "t"}, "Bearer t"),
        ({"token": "Bearer t"}, "Bearer t"),
        ({"authToken": "t", "headers": {"Authorization": "Bearer t"}}, "Bearer t"),
        ({"clientName": "web", "headers": {"x-request-id": "1"}}, None),
    ],
)
def test_connection_init_credentials_in_every_shape(
    payload: dict[str, Any], expected: str | None
) -> None:
    assert connection_authorization(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        {"Authorization": 42},
        {"authToken": ""},
        {"headers": "Bearer t"},
        {"accessToken": "t"},
        {"jwt": "t"},
        {"token": "a", "authToken": "b"},
    ],
)
def test_credentials_it_cannot_read_are_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(AuthenticationFailed, match="connection_init"):
        connection_authorization(payload)


async def test_websockets_follow_the_cors_origins_and_read_every_credential_shape(
    fresh_db_url: str,
) -> None:
    await prepare_write_db(fresh_db_url)
    env = {"DATABASE_URL": fresh_db_url, "JWT_SECRET": TEST_SECRET}
    with live_server(**env, CORS_ALLOWED_ORIGINS=f"{APP}/,https://other.example") as base:
        live = Live(base, fresh_db_url, None, TEST_SECRET)  # type: ignore[arg-type]
        token = live.token(OWNER)
        # A page on an allowed origin may subscribe; one on another origin may not.
        async with ws_client(base, origin=APP, token=token):  # type: ignore[arg-type]
            pass
        with pytest.raises(InvalidStatus) as refused:
            async with ws_client(base, origin="https://evil.test"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        for payload in (
            {"Authorization": f"Bearer {token}"},
            {"headers": {"Authorization": f"Bearer {token}"}},
            {"authToken": token},
            {"token": token},
        ):
            async with ws_client(base, init=False) as client:
                await client.send({"type": "connection_init", "payload": payload})
                assert (await client.receive())["type"] == "connection_ack"
                await client.subscribe("{ viewer { databaseId } }")
                assert (await client.next_payload())["data"] == {
                    "viewer": {"databaseId": str(OWNER)}
                }
        for payload in ({"authToken": 42}, {"accessToken": token}):
            async with ws_client(base, init=False) as client:
                await client.send({"type": "connection_init", "payload": payload})
                with pytest.raises(ConnectionClosed) as closed:
                    await client.receive()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
