"""A WebSocket's credentials, read from its ``connection_init`` payload.

Browsers cannot set headers on a WebSocket, so clients put the credentials in the payload of
the first message, each library's examples in their own shape: ``{Authorization: "Bearer
t"}`` (graphql-ws), ``{headers: {Authorization: "Bearer t"}}`` (Hasura, and Apollo examples),
``{authToken: "t"}`` (Apollo's subscriptions-transport-ws docs) or ``{token: "t"}``. All of
them are read. A payload that carries something that looks like a credential in a shape not
read here is refused, never run anonymously: a client that believes it signed in must not be
served as a stranger without a word.
Source: graphql-ws PROTOCOL.md, ``ConnectionInit``; Hasura docs, "Subscriptions"
(``connectionParams.headers``); Apollo Server docs, "Subscriptions" (``authToken``).
"""

from __future__ import annotations

from collections.abc import Mapping

from schema.errors import AuthenticationFailed

#: Payload keys holding a bare token (or ``Bearer <token>``).
TOKEN_KEYS = ("authToken", "token")
#: Fragments of key names that mean "a credential" (compared in lower case).
CREDENTIAL_WORDS = ("auth", "token", "jwt", "bearer", "cookie", "secret", "session", "password")
SHAPES = (
    '{"Authorization": "Bearer <token>"}, {"headers": {"Authorization": "Bearer <token>"}}, '
    '{"authToken": "<token>"} or {"token": "<token>"}'
)


def connection_authorization(payload: Mapping[str, object] | None) -> str | None:
    """The ``Authorization`` value (``Bearer <token>``) that ``payload`` carries, or ``None``
    when it carries no credentials (an anonymous connection).

    Raises ``AuthenticationFailed`` (the connection is then closed with 4403) for credentials
    in a shape it cannot read: a value that is not a non-empty string, ``headers`` that is not
    an object, two shapes naming different credentials, or any other key that names a
    credential (``accessToken``, ``jwt``, ``cookie``...).
    """
    found: dict[str, str] = {}
    for key, value in (payload or {}).items():
        if key.lower() == "authorization":
            found[key] = _string(key, value)
        elif key in TOKEN_KEYS:
            token = _string(key, value)
            found[key] = token if token.lower().startswith("bearer ") else f"Bearer {token}"
        elif key == "headers":
            if not isinstance(value, Mapping):
                raise _unreadable("`headers` must be an object of header names and values.")
            for name, header in value.items():
                if name.lower() == "authorization":
                    found[f"headers.{name}"] = _string(f"headers.{name}", header)
        elif any(word in key.lower() for word in CREDENTIAL_WORDS):
            raise _unreadable(f"`{key}` is not a credential Inkwell reads.")
    if len(set(found.values())) > 1:
        raise _unreadable(f"{', '.join(sorted(found))} name different credentials.")
    return next(iter(found.values()), None)


def _string(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _unreadable(f"`{key}` must be a non-empty string.")
    return value.strip()


def _unreadable(problem: str) -> AuthenticationFailed:
    return AuthenticationFailed(f"connection_init: {problem} Send credentials as {SHAPES}.")
