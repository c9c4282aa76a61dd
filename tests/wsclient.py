"""A small graphql-transport-ws (and graphql-ws) client for tests, on the `websockets` library,
plus helpers to drive a live server: sign-in headers, HTTP mutations, and its /metrics."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import socket
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.live import graphql_body

#: Seconds a test waits for one expected message.
RECEIVE_TIMEOUT = 20.0


class GraphQLWS:
    """One WebSocket connection speaking graphql-transport-ws (``legacy=False``) or the
    older graphql-ws protocol."""

    def __init__(self, connection: ClientConnection, *, legacy: bool) -> None:
        self.connection = connection
        self.legacy = legacy
        self._ids = itertools.count(1)

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def receive(self, seconds: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        """The next message, skipping pings (answered) and keep-alives."""
        while True:
            raw = await asyncio.wait_for(self.connection.recv(), seconds)
            assert isinstance(raw, str), "the protocols send JSON in text frames"
            message: dict[str, Any] = json.loads(raw)
            if message["type"] == "ping":
                await self.send({"type": "pong"})
            elif message["type"] != "ka":
                return message

    async def init(self, token: str | None = None) -> dict[str, Any]:
        """Send ``connection_init`` (with ``authorization`` when ``token``) and return the
        answer (``connection_ack``)."""
        payload = {"authorization": f"Bearer {token}"} if token else {}
        await self.send({"type": "connection_init", "payload": payload})
        return await self.receive()

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        """Start an operation; returns its id."""
        operation_id = str(next(self._ids))
        kind = "start" if self.legacy else "subscribe"
        payload = {"query": query, "variables": variables or {}}
        await self.send({"id": operation_id, "type": kind, "payload": payload})
        return operation_id

    async def next_payload(self, seconds: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        """The payload of the next ``next`` (``data`` in graphql-ws) message; fails on any
        other message."""
        message = await self.receive(seconds)
        assert message["type"] == ("data" if self.legacy else "next"), message
        return message["payload"]  # type: ignore[no-any-return]


@asynccontextmanager
async def ws_client(
    base: str, *, token: str | None = None, legacy: bool = False, init: bool = True, **kwargs: Any
) -> AsyncIterator[GraphQLWS]:
    """A connection to ``base``'s ``/graphql``, initialised (signed in with ``token``)."""
    url = base.replace("http://", "ws://") + "/graphql"
    protocol = "graphql-ws" if legacy else "graphql-transport-ws"
    async with connect(url, subprotocols=[protocol], proxy=None, **kwargs) as connection:  # type: ignore[list-item]
        client = GraphQLWS(connection, legacy=legacy)
        if init:
            ack = await client.init(token)
            assert ack["type"] == "connection_ack", ack
        yield client


def metric(base: str, name: str) -> float:
    """The value of an unlabelled Prometheus metric on ``base``'s ``/metrics``."""
    text = httpx.get(f"{base}/metrics", timeout=5).text
    found = re.search(rf"^{name}(?:_total)? (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


async def wait_for_metric(base: str, name: str, at_least: float, seconds: float = 30) -> None:
    """Poll ``metric`` until it reaches ``at_least``; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (value := await asyncio.to_thread(metric, base, name)) < at_least:
        assert time.monotonic() < deadline, f"{name} stayed at {value}, below {at_least}"
        await asyncio.sleep(0.05)


async def post_graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    """POST ``query`` to ``/graphql``; assert its status (``graphql_body``) and return the
    body."""
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, **kw
    )
    return graphql_body(response)


class StalledSubscriber:
    """A graphql-transport-ws client that subscribes and then never reads again: a raw TCP
    socket with a tiny receive buffer, so the server's writes to it soon block.

    (A library client keeps reading into its own buffers; this one leaves everything to the
    kernel, which is what a stuck or overwhelmed browser tab looks like to the server.)
    """

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )
        self._read_until(b"\r\n\r\n")
        self.send({"type": "connection_init", "payload": {}})
        self._read_until(b"connection_ack")

    def _read_until(self, marker: bytes) -> None:
        received = b""
        while marker not in received:
            chunk = self.sock.recv(1024)
            assert chunk, "the server closed the connection"
            received += chunk

    def send(self, message: dict[str, Any]) -> None:
        """One masked text frame (RFC 6455 §5.2; clients must mask)."""
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if len(payload) < 126:
            header = struct.pack("!BB", 0x81, 0x80 | len(payload))
        else:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
        self.sock.sendall(header + mask + masked)

    def subscribe(self, query: str, variables: dict[str, Any]) -> None:
        payload = {"query": query, "variables": variables}
        self.send({"id": "stalled", "type": "subscribe", "payload": payload})

    def close(self) -> None:
        self.sock.close()
